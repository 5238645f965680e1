/**
 * FlushScheduler: when the bytes queued for client streams go to their sockets.
 *
 * Every stream written to during a turn is flushed in one pass, one write per stream whatever the
 * number of events queued for it. Fan-out on loopback costs one `write` system call per stream per
 * pass, so the way to spend less per delivery is to put more events in each write. A pass therefore
 * does not start sooner after the previous one than that pass took (capped at MAX_COALESCE_MS):
 * when events are sparse (a pass every few hundred ms) nothing waits, and under a burst the loop
 * spends at most about half its time writing while the events that arrive meanwhile share the
 * next write.
 */

/** Longest an event waits for company before its pass starts, in ms. */
const MAX_COALESCE_MS = 8;

export interface Flushable {
  flush(): void;
}

export class FlushScheduler {
  private readonly dirty = new Set<Flushable>();
  private scheduled = false;
  private lastPassStart = 0;
  private lastPassEnd = 0;
  private lastPassCost = 0;

  constructor(private readonly maxCoalesceMs = MAX_COALESCE_MS) {}

  /** Queues a stream for the next pass. */
  add(s: Flushable): void {
    this.dirty.add(s);
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = Math.min(this.maxCoalesceMs, this.lastPassCost) - (performance.now() - this.lastPassEnd);
    if (wait >= 1) setTimeout(this.run, wait);
    else setImmediate(this.run);
  }

  /** Drops a stream that closed before its pass. */
  delete(s: Flushable): void {
    this.dirty.delete(s);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    this.lastPassStart = performance.now();
    for (const s of this.dirty) s.flush();
    this.dirty.clear();
    // Enqueuing only hands the bytes over; the runtime writes them to the sockets after this turn.
    // The pass's real cost is known when the loop comes back to us.
    setImmediate(this.measure);
  };

  private readonly measure = (): void => {
    this.lastPassEnd = performance.now();
    this.lastPassCost = this.lastPassEnd - this.lastPassStart;
  };
}
