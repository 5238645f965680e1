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
 *
 * A pass over many streams goes FLUSH_STREAMS_PER_TURN at a time, one batch per turn of the event loop:
 * an event to 2,500 matches of 4 streams each, or to one match of 10,000, made one pass of 10,000 writes
 * that held the loop 60-100 ms (timers, health checks, acks waiting behind it).
 */

/** Longest an event waits for company before its pass starts, in ms. */
const MAX_COALESCE_MS = 8;
/**
 * Streams one turn of a pass writes to (about 1.5 ms of writes at this machine's 8 µs per delivery). With
 * the NATS reads' and the paced requests' budgets, a turn stays well under what a health check may wait
 * even while nats-server shares the core (20,000 matches, delivering: 1,000 a turn left /readyz at 75-98 ms,
 * 400 at 29-58 ms, 200 at 17-30 ms; see bus/bunTransport.ts for the reads' share).
 */
export const FLUSH_STREAMS_PER_TURN = 200;

export interface Flushable {
  flush(): void;
}

export class FlushScheduler {
  private readonly dirty = new Set<Flushable>();
  /** The streams of the pass under way, written FLUSH_STREAMS_PER_TURN per turn from `passAt`. */
  private passing: Flushable[] = [];
  private passAt = 0;
  private scheduled = false;
  private lastPassStart = 0;
  private lastPassEnd = 0;
  private lastPassCost = 0;

  constructor(
    private readonly maxCoalesceMs = MAX_COALESCE_MS,
    private readonly streamsPerTurn = FLUSH_STREAMS_PER_TURN,
  ) {}

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
    const fresh = [...this.dirty];
    this.dirty.clear();
    // A pass still under way (many streams) takes these on at its end, in its next turns.
    if (this.passAt < this.passing.length) {
      for (const s of fresh) this.passing.push(s);
      return;
    }
    this.lastPassStart = performance.now();
    this.passing = fresh;
    this.passAt = 0;
    this.writeSome();
  };

  private readonly writeSome = (): void => {
    const end = Math.min(this.passing.length, this.passAt + this.streamsPerTurn);
    // A stream closed since the pass began is skipped by its own flush.
    for (let i = this.passAt; i < end; i++) (this.passing[i] as Flushable).flush();
    this.passAt = end;
    // Enqueuing only hands the bytes over; the runtime writes them to the sockets after this turn.
    // The pass's real cost is known when the loop comes back to us.
    setImmediate(end < this.passing.length ? this.writeSome : this.measure);
  };

  private readonly measure = (): void => {
    if (this.passAt < this.passing.length) return; // streams joined the pass: writeSome goes on
    this.passing = [];
    this.passAt = 0;
    this.lastPassEnd = performance.now();
    this.lastPassCost = this.lastPassEnd - this.lastPassStart;
  };
}
