/**
 * The demo producer: `matches` slots, each playing one simulated match after another against the
 * cluster's HTTP API. A slot publishes its match's events strictly in order (the next one waits until
 * the previous one is stored), so a retry never reorders a match; slots run independently, so one
 * match stuck retrying holds up no other.
 */
import { SimulatedMatch, type DemoEvent } from "./matchSim.ts";
import { abortableSleep, Publisher } from "./publisher.ts";
import { CLUBS, squadOf } from "./teams.ts";

export interface DemoProducerOptions {
  baseUrl: string;
  matches: number;
  /** Speed factor: 1 plays a simulated minute in REAL_MS_PER_MINUTE, 2 twice as fast. */
  speed: number;
  token?: string;
  log: (line: string) => void;
}

/** At speed 1 a match lasts about four real minutes including half-time. */
export const REAL_MS_PER_MINUTE = 2000;
/** Kick-offs of the first round are spread over this many simulated minutes, as on a real match day. */
const KICKOFF_SPREAD_MINUTES = 20;
/** A slot rests this long (simulated minutes) between the final whistle and its next kick-off. */
const REST_MINUTES = { min: 5, max: 20 } as const;

type SlotPhase = "waiting" | "live" | "half-time" | "between";

/** Clubs not currently playing, so no club is in two matches at once (while there are enough). */
class ClubPool {
  private free = [...CLUBS];

  take(): string {
    if (this.free.length === 0) return CLUBS[Math.floor(Math.random() * CLUBS.length)]!;
    const i = Math.floor(Math.random() * this.free.length);
    const [club] = this.free.splice(i, 1);
    return club!;
  }

  release(club: string): void {
    if (!this.free.includes(club)) this.free.push(club);
  }
}

export class DemoProducer {
  private readonly stopper = new AbortController();
  private readonly publisher: Publisher;
  private readonly clubs = new ClubPool();
  private readonly phases: SlotPhase[];
  private readonly runId = Date.now().toString(36).slice(-5);
  private readonly byType = new Map<string, number>();
  /** Per slot: the match being played and the sequence number of its next event. */
  private readonly current: ({ match: SimulatedMatch; next: number } | undefined)[];
  private running: Promise<void> | undefined;

  constructor(private readonly opts: DemoProducerOptions) {
    this.publisher = new Publisher({ baseUrl: opts.baseUrl, token: opts.token, signal: this.stopper.signal, log: opts.log });
    this.phases = Array.from({ length: opts.matches }, () => "waiting" as SlotPhase);
    this.current = Array.from({ length: opts.matches }, () => undefined);
  }

  get counts() {
    return this.publisher.counts;
  }

  start(): void {
    this.running ??= Promise.all(this.phases.map((_, slot) => this.runSlot(slot))).then(() => {});
  }

  /**
   * Stops scheduling; requests already sent are let finish. Then every match still in play gets a
   * final whistle (one attempt each), so none is left "live" in the cluster.
   */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.running;
    await Promise.all(
      this.current.map(async (playing, slot) => {
        if (!playing || (this.phases[slot] !== "live" && this.phases[slot] !== "half-time")) return;
        const event = playing.match.abandon();
        if ((await this.publisher.publish(playing.match.id, event, `${playing.match.id}:abandoned`, { once: true })) === "stored") {
          this.count(event);
          this.phases[slot] = "between";
        }
      }),
    );
  }

  /** One line for the log: what the slots are doing and what was published. */
  summary(): string {
    const phase = (p: SlotPhase): number => this.phases.filter((x) => x === p).length;
    const c = this.publisher.counts;
    const types = [...this.byType].map(([t, n]) => `${t} ${n}`).join(", ");
    return (
      `${this.opts.matches} slots: ${phase("live")} live, ${phase("half-time")} half-time, ` +
      `${phase("between") + phase("waiting")} between matches; stored ${c.stored}, duplicates ${c.duplicates}, ` +
      `retries ${c.retries}, refused ${c.rejected}` +
      (types ? ` (${types})` : "")
    );
  }

  private minutes(n: number): number {
    return (n * REAL_MS_PER_MINUTE) / this.opts.speed;
  }

  private async runSlot(slot: number): Promise<void> {
    const signal = this.stopper.signal;
    await abortableSleep(this.minutes(Math.random() * KICKOFF_SPREAD_MINUTES), signal);
    for (let round = 1; !signal.aborted; round++) {
      const home = this.clubs.take();
      const away = this.clubs.take();
      const id = `${this.runId}-m${String(slot + 1).padStart(3, "0")}-${round}`;
      try {
        await this.playMatch(slot, new SimulatedMatch(id, squadOf(home), squadOf(away)));
      } finally {
        this.clubs.release(home);
        this.clubs.release(away);
      }
      if (signal.aborted) return;
      this.phases[slot] = "between";
      const rest = REST_MINUTES.min + Math.random() * (REST_MINUTES.max - REST_MINUTES.min);
      await abortableSleep(this.minutes(rest), signal);
    }
  }

  private async playMatch(slot: number, match: SimulatedMatch): Promise<void> {
    const signal = this.stopper.signal;
    const playing = { match, next: 0 };
    this.current[slot] = playing;
    // Steps are timed against a schedule, not after each publish, so slow answers do not stretch a match.
    let due = performance.now();
    for (const step of match.play()) {
      due += this.minutes(step.afterMinutes);
      await abortableSleep(due - performance.now(), signal);
      if (signal.aborted) return;
      for (const event of step.events) {
        const outcome = await this.publisher.publish(match.id, event, `${match.id}:${playing.next}`);
        if (outcome === "stopped") return;
        playing.next++;
        this.count(event);
        this.phases[slot] = phaseAfter(event, this.phases[slot]!);
      }
    }
  }

  private count(event: DemoEvent): void {
    this.byType.set(event.type, (this.byType.get(event.type) ?? 0) + 1);
  }
}

function phaseAfter(event: DemoEvent, current: SlotPhase): SlotPhase {
  const status = event.state?.status;
  if (status === "live") return "live";
  if (status === "half-time") return "half-time";
  if (status === "full-time") return "between";
  return current;
}
