/**
 * One simulated football match, played out in simulated minutes, as events of the football convention
 * in docs/design.md: `kickoff`, `goal`, `card`, `substitution`, `halftime`, `fulltime`, plus a
 * `minute` tick that moves the clock when nothing else happened in that minute.
 *
 * The rates are rough real-world averages (about 2.7 goals, 4 cards and 8 substitutions a match),
 * so the page shows believable scores. Timing is left to the caller: `play()` yields how many simulated
 * minutes to wait before each batch of events.
 */
import type { Player, Team } from "./teams.ts";

export type Side = "home" | "away";

export interface DemoEvent {
  type: string;
  data: Record<string, unknown>;
  /** A JSON merge patch on the match state. */
  state?: Record<string, unknown>;
  /** The match's last event: it ends the match (streams get `touchline.end`, later publishes 409). */
  final?: boolean;
}

export interface PlayStep {
  /** Simulated minutes to wait before publishing `events`. */
  afterMinutes: number;
  events: DemoEvent[];
}

export const HALF_MINUTES = 45;
export const FULL_MINUTES = 90;
export const HALF_TIME_BREAK_MINUTES = 15;

/** Chances per team per simulated minute. */
const GOAL_CHANCE: Record<Side, number> = { home: 0.0165, away: 0.0135 };
const PENALTY_SHARE = 0.1;
const YELLOW_CHANCE = 0.022;
const STRAIGHT_RED_CHANCE = 0.0007;
const SUB_CHANCE = 0.11;
const SUB_WINDOW = { from: 55, to: 88 } as const;
const HALF_TIME_SUB_CHANCE = 0.2;
const MAX_SUBS = 5;
/** A side a player short scores less often. */
const GOAL_FACTOR_PER_MISSING_PLAYER = 0.8;
const STOPPAGE_MINUTES = { first: [1, 4], second: [2, 7] } as const;

/**
 * The feed shows `data.minute` beside each line, so a line names the minute only in added time,
 * which the clock (held at 45 or 90) cannot show.
 */
function addedTime(minute: number, added: string): string {
  return added ? `, ${minute}${added}'` : "";
}

class TeamInPlay {
  onPitch: Player[];
  bench: Player[];
  subsUsed = 0;
  score = 0;
  private yellows = new Set<string>();

  constructor(readonly team: Team) {
    this.onPitch = [...team.starters];
    this.bench = [...team.bench];
  }

  get missing(): number {
    return 11 - this.onPitch.length;
  }

  /** Returns true when it was a second yellow (the player is sent off). */
  book(player: Player): boolean {
    if (this.yellows.has(player.name)) {
      this.sendOff(player);
      return true;
    }
    this.yellows.add(player.name);
    return false;
  }

  sendOff(player: Player): void {
    this.onPitch = this.onPitch.filter((p) => p !== player);
  }

  substitute(off: Player, on: Player): void {
    this.onPitch = this.onPitch.map((p) => (p === off ? on : p));
    this.bench = this.bench.filter((p) => p !== on);
    this.subsUsed++;
  }
}

/** Where a player tends to score from: forwards most, goalkeepers never. */
const SCORING_WEIGHT = { GK: 0, DF: 1, MF: 3, FW: 6 } as const;

export class SimulatedMatch {
  private readonly sides: Record<Side, TeamInPlay>;
  /** The clock as last published. */
  private clock = 0;

  constructor(
    readonly id: string,
    home: Team,
    away: Team,
    private readonly rand: () => number = Math.random,
  ) {
    this.sides = { home: new TeamInPlay(home), away: new TeamInPlay(away) };
  }

  get home(): string {
    return this.sides.home.team.name;
  }

  get away(): string {
    return this.sides.away.team.name;
  }

  get score(): string {
    return `${this.home} ${this.sides.home.score}–${this.sides.away.score} ${this.away}`;
  }

  /** The whole match, step by step; the first step is the kick-off, the last the final whistle. */
  *play(): Generator<PlayStep> {
    yield {
      afterMinutes: 0,
      events: [
        {
          type: "kickoff",
          data: { minute: 0, text: `Kick-off: ${this.home} v ${this.away}` },
          state: { home: this.home, away: this.away, homeScore: 0, awayScore: 0, minute: 0, status: "live" },
        },
      ],
    };
    yield* this.half(1, HALF_MINUTES, STOPPAGE_MINUTES.first);
    yield {
      afterMinutes: 1,
      events: [
        {
          type: "halftime",
          data: { minute: HALF_MINUTES, text: "Half-time" },
          state: { minute: HALF_MINUTES, status: "half-time" },
        },
      ],
    };
    const restart: DemoEvent[] = [{ type: "kickoff", data: { minute: HALF_MINUTES, text: "Second half under way" }, state: { status: "live" } }];
    for (const side of ["home", "away"] as const) {
      if (this.rand() < HALF_TIME_SUB_CHANCE) {
        const sub = this.substitution(side, HALF_MINUTES, "");
        if (sub) restart.push(sub);
      }
    }
    yield { afterMinutes: HALF_TIME_BREAK_MINUTES, events: restart };
    yield* this.half(HALF_MINUTES + 1, FULL_MINUTES, STOPPAGE_MINUTES.second);
    yield {
      afterMinutes: 1,
      events: [
        {
          type: "fulltime",
          data: { minute: FULL_MINUTES, text: "Full-time" },
          state: { minute: FULL_MINUTES, status: "full-time" },
          final: true,
        },
      ],
    };
  }

  /**
   * The last event of a match cut short (the producer stops mid-match): the match is over for good,
   * so it should not stay "live" in the cluster's match list for the whole retention period.
   */
  abandon(): DemoEvent {
    return {
      type: "fulltime",
      data: { minute: this.clock, abandoned: true, text: "Match abandoned" },
      state: { status: "full-time" },
      final: true,
    };
  }

  private *half(first: number, last: number, stoppage: readonly [number, number]): Generator<PlayStep> {
    for (let minute = first; minute <= last; minute++) {
      this.clock = minute;
      const incidents = this.incidents(minute, "");
      // The clock rides on the minute's incidents; a quiet minute gets a tick of its own.
      if (incidents.length === 0) incidents.push({ type: "minute", data: { minute }, state: { minute } });
      yield { afterMinutes: 1, events: incidents };
    }
    const added = stoppage[0] + Math.floor(this.rand() * (stoppage[1] - stoppage[0] + 1));
    // Added time: the clock stays at 45 or 90; incidents are labelled 45+2' and so on.
    for (let extra = 1; extra < added; extra++) {
      yield { afterMinutes: 1, events: this.incidents(last, `+${extra}`) };
    }
  }

  /** What happens in one minute; each incident also sets the clock, so a reader needs no tick to know it. */
  private incidents(minute: number, added: string): DemoEvent[] {
    const out: DemoEvent[] = [];
    for (const side of ["home", "away"] as const) {
      const t = this.sides[side];
      if (this.rand() < GOAL_CHANCE[side] * GOAL_FACTOR_PER_MISSING_PLAYER ** t.missing) out.push(this.goal(side, minute, added));
      if (this.rand() < YELLOW_CHANCE) out.push(this.card(side, minute, added, "yellow"));
      if (this.rand() < STRAIGHT_RED_CHANCE) out.push(this.card(side, minute, added, "red"));
      if (minute >= SUB_WINDOW.from && minute <= SUB_WINDOW.to && this.rand() < SUB_CHANCE) {
        const sub = this.substitution(side, minute, added);
        if (sub) out.push(sub);
      }
    }
    for (const e of out) e.state = { ...e.state, minute };
    return out;
  }

  private pick<T>(items: T[], weight: (item: T) => number = () => 1): T {
    const total = items.reduce((sum, item) => sum + weight(item), 0);
    let r = this.rand() * total;
    for (const item of items) {
      r -= weight(item);
      if (r < 0) return item;
    }
    return items[items.length - 1]!;
  }

  private goal(side: Side, minute: number, added: string): DemoEvent {
    const t = this.sides[side];
    const scorer = this.pick(t.onPitch, (p) => SCORING_WEIGHT[p.position]);
    t.score++;
    const how = this.rand() < PENALTY_SHARE ? " from the penalty spot" : "";
    return {
      type: "goal",
      data: { team: side, player: scorer.name, minute, text: `GOAL! ${scorer.name} (${t.team.name})${how}${addedTime(minute, added)}` },
      state: side === "home" ? { homeScore: t.score } : { awayScore: t.score },
    };
  }

  private card(side: Side, minute: number, added: string, colour: "yellow" | "red"): DemoEvent {
    const t = this.sides[side];
    const player = this.pick(t.onPitch);
    let card: "yellow" | "red" = colour;
    let label = colour === "red" ? "Red card" : "Yellow card";
    if (colour === "yellow" && t.book(player)) {
      card = "red";
      label = "Second yellow, sent off";
    } else if (colour === "red") {
      t.sendOff(player);
    }
    return {
      type: "card",
      data: { team: side, player: player.name, minute, card, text: `${label}: ${player.name} (${t.team.name})${addedTime(minute, added)}` },
    };
  }

  private substitution(side: Side, minute: number, added: string): DemoEvent | undefined {
    const t = this.sides[side];
    if (t.subsUsed >= MAX_SUBS || t.bench.length === 0) return undefined;
    const outfield = t.onPitch.filter((p) => p.position !== "GK");
    const fresh = t.bench.filter((p) => p.position !== "GK");
    if (outfield.length === 0 || fresh.length === 0) return undefined;
    const off = this.pick(outfield);
    const like = fresh.filter((p) => p.position === off.position);
    const on = this.pick(like.length > 0 ? like : fresh);
    t.substitute(off, on);
    const when = minute === HALF_MINUTES && added === "" ? " at half-time" : addedTime(minute, added);
    return {
      type: "substitution",
      data: { team: side, player: on.name, playerOff: off.name, minute, text: `Substitution, ${t.team.name}: ${on.name} on for ${off.name}${when}` },
    };
  }
}
