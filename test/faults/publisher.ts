/**
 * A producer that does what the contract asks of one: every event carries an idempotency key, and a
 * publish that failed or went unanswered is retried with the same key (on the next node) until it is
 * acknowledged: 201, or 200 with `duplicate: true`. Each event of a match is its own task on a fixed
 * schedule, so a node that hangs slows only the attempts sent to it, not the match's rate. The
 * acknowledged ids are recorded per match; their order is the log's (the checker compares ids).
 */
import type { AckedIds } from "./history.ts";

export interface MatchPlan {
  match: string;
  perSecond: number;
}

/** Event type of every publish (the recording clients listen for it by name). */
export const PLAY = "play";

/** How long one attempt may take before it is abandoned and retried elsewhere (a paused node never answers). */
const ATTEMPT_TIMEOUT_MS = 2000;
/** Retries back off from the first delay to the cap, as a considerate producer's would. */
const RETRY_FIRST_MS = 100;
const RETRY_CAP_MS = 1000;

export class Publisher {
  private readonly ackedIds = new Map<string, string[]>();
  /** Failed attempts by outcome ("503", "timeout", "refused", ...). */
  readonly failures = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private running = false;
  private paused = false;
  private giveUpAt = Infinity;
  private rr = 0;
  private readonly run = Math.random().toString(36).slice(2, 8);

  constructor(
    private readonly nodes: () => string[],
    private readonly plans: readonly MatchPlan[],
  ) {
    for (const p of plans) this.ackedIds.set(p.match, []);
  }

  get acked(): AckedIds {
    return this.ackedIds;
  }

  /** Publishes still waiting for an acknowledgement. */
  get pending(): number {
    return this.inFlight.size;
  }

  start(): void {
    this.running = true;
    for (const p of this.plans) void this.schedule(p);
  }

  /** Stops starting new events (in-flight ones keep retrying); resume() starts again. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** Waits until every started publish is acknowledged; resolves true, or false if `timeoutMs` ran out. */
  async settle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) await Bun.sleep(50);
    return this.inFlight.size === 0;
  }

  /** Stops publishing; waits for what was started, up to `timeoutMs`. Returns the publishes never acknowledged. */
  async stop(timeoutMs: number): Promise<number> {
    this.running = false;
    await this.settle(timeoutMs);
    const unacked = this.inFlight.size;
    this.giveUpAt = 0; // let the retry loops end so the process can exit
    await Promise.all(this.inFlight);
    return unacked;
  }

  private async schedule(plan: MatchPlan): Promise<void> {
    const interval = 1000 / plan.perSecond;
    let next = Date.now();
    for (let n = 0; this.running; ) {
      if (!this.paused) {
        const i = n++;
        const p = this.publish(plan.match, `${this.run}-${plan.match}-${i}`, i);
        this.inFlight.add(p);
        void p.finally(() => this.inFlight.delete(p));
      }
      next += interval;
      await Bun.sleep(Math.max(0, next - Date.now()));
    }
  }

  private async publish(match: string, key: string, n: number): Promise<void> {
    const body = JSON.stringify({ type: PLAY, data: { n }, state: { n }, key });
    for (let delay = RETRY_FIRST_MS; Date.now() < this.giveUpAt; delay = Math.min(RETRY_CAP_MS, delay * 2)) {
      const nodes = this.nodes();
      const url = `${nodes[this.rr++ % nodes.length]}/matches/${match}/events`;
      const outcome = await attempt(url, body);
      if (typeof outcome === "object") {
        this.ackedIds.get(match)!.push(outcome.id);
        return;
      }
      this.failures.set(outcome, (this.failures.get(outcome) ?? 0) + 1);
      await Bun.sleep(delay);
    }
  }
}

/** One attempt: the acknowledged id, or a word for how it failed. */
async function attempt(url: string, body: string): Promise<{ id: string } | string> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
    });
    const answer = (await res.json().catch(() => ({}))) as { id?: string; duplicate?: boolean };
    if ((res.status === 201 || (res.status === 200 && answer.duplicate === true)) && typeof answer.id === "string") return { id: answer.id };
    return String(res.status);
  } catch (e) {
    return (e as Error).name === "TimeoutError" ? "timeout" : "unreachable";
  }
}
