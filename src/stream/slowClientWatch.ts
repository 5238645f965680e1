/**
 * SlowClientWatch: decides when a client stream is too slow to keep (invariant 6 of docs/design.md).
 *
 * Slowness is judged over time, not by one write. A burst of large events can queue several times
 * CLIENT_BUFFER_BYTES for a stream in one turn, and a client that reads at full speed takes it all a
 * few milliseconds later: cutting it on that enqueue would cut the fastest readers of the busiest
 * matches. So a stream is cut when its unsent bytes stay above the cap for longer than the grace
 * (SLOW_CLIENT_GRACE), or at once when they pass the ceiling (a multiple of the cap), which keeps the
 * memory a stream can hold bounded by bytes whatever the grace.
 *
 * Only streams over the cap are tracked, with the time they went over; a periodic check (running only
 * while some stream is over) forgets those that drained and cuts those whose grace ran out without
 * another write to notice it.
 */

/** What the watch needs of a stream (SseStream has it). */
export interface Watched {
  readonly open: boolean;
  readonly unsentBytes: number;
  close(reason: "slow"): void;
}

/** Why a stream was cut: what the log line and the metric say. */
export interface SlowCut {
  unsentBytes: number;
  /** How long its unsent bytes had been above the cap. */
  overMs: number;
  /** Cut at once for passing the ceiling, rather than for staying over the cap. */
  pastCeiling: boolean;
}

export interface SlowClientLimits {
  /** CLIENT_BUFFER_BYTES. */
  capBytes: number;
  /** Unsent bytes at which a stream is cut at once. */
  ceilingBytes: number;
  /** SLOW_CLIENT_GRACE: how long a stream may stay above the cap. */
  graceMs: number;
}

/** The periodic check runs this many times per grace, so a cut comes at most a quarter-grace late. */
const CHECKS_PER_GRACE = 4;
const MIN_CHECK_MS = 20;
const MAX_CHECK_MS = 1000;

export class SlowClientWatch {
  /** Streams above the cap, with the time (ms) they went above it. */
  private readonly over = new Map<Watched, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly checkMs: number;

  constructor(
    private readonly limits: SlowClientLimits,
    private readonly onCut: (cut: SlowCut) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.checkMs = Math.min(MAX_CHECK_MS, Math.max(MIN_CHECK_MS, Math.floor(limits.graceMs / CHECKS_PER_GRACE)));
  }

  /** Streams currently above the cap. */
  get size(): number {
    return this.over.size;
  }

  /**
   * Called after bytes were queued for a stream that holds `unsent` of them. Returns true when the
   * stream was cut (it is closed as "slow" before this returns).
   */
  judge(s: Watched, unsent: number): boolean {
    if (unsent <= this.limits.capBytes) {
      if (this.over.size > 0) this.over.delete(s);
      return false;
    }
    const now = this.now();
    let since = this.over.get(s);
    if (since === undefined) {
      since = now;
      this.over.set(s, since);
      this.timer ??= setInterval(this.check, this.checkMs);
    }
    if (unsent <= this.limits.ceilingBytes && now - since < this.limits.graceMs) return false;
    this.cut(s, unsent, now - since);
    return true;
  }

  /** Re-reads every stream over the cap: forgets those that drained, cuts those whose grace ran out. */
  readonly check = (): void => {
    const now = this.now();
    for (const [s, since] of this.over) {
      const unsent = s.open ? s.unsentBytes : 0;
      if (unsent <= this.limits.capBytes) this.over.delete(s);
      else if (now - since >= this.limits.graceMs) this.cut(s, unsent, now - since);
    }
    if (this.over.size === 0) this.stop();
  };

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private cut(s: Watched, unsentBytes: number, overMs: number): void {
    this.over.delete(s);
    this.onCut({ unsentBytes, overMs, pastCeiling: unsentBytes > this.limits.ceilingBytes });
    s.close("slow");
  }
}
