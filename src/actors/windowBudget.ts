/**
 * WindowBudget: the bytes that all match windows of a node share (WINDOW_BUDGET_BYTES), so the memory
 * held for reconnects is bounded by bytes however many matches are active (invariant 6 of
 * docs/design.md).
 *
 * Past the budget the globally oldest events go first, whichever window holds them. Trimming the window
 * that happens to be pushing would be simpler, but it punishes the busy matches (the ones a reconnect
 * storm needs served from memory) while quiet windows keep their old events, and a match that starts
 * once the budget is full could hold nearly nothing. Oldest-first gives way where events are least
 * likely to be asked for.
 *
 * Every event held is one entry in a queue, in push order. Within a window events are pushed and dropped
 * oldest first, so the first live entry of the queue is always the oldest event of its own window, and
 * evicting it keeps that window contiguous. Entries a window dropped by itself (its own caps, a clear)
 * are marked and skipped when reached; the queue is compacted once they outnumber the live ones, so it
 * holds at most about twice the live events. A dropped entry lets go of its event and its window at
 * once, so the queue never keeps either alive.
 */

/** What a window does when the budget takes its oldest event. */
export interface BudgetHolder {
  /** Drops the window's oldest event, which is the entry given; the window calls `release` for it. */
  evictOldest(entry: BudgetEntry<unknown>): void;
}

/** One event held by a window and charged to the budget. */
export class BudgetEntry<E> {
  constructor(
    public item: E | undefined,
    readonly bytes: number,
    public holder: BudgetHolder | undefined,
  ) {}

  get dropped(): boolean {
    return this.holder === undefined;
  }

  /** Lets go of the event and its window; false when it was dropped already. */
  drop(): boolean {
    if (this.holder === undefined) return false;
    this.holder = undefined;
    this.item = undefined;
    return true;
  }
}

/** Dropped entries tolerated at the queue's head before compacting, whatever the live count. */
const COMPACT_MIN = 64;

export class WindowBudget {
  private queue: BudgetEntry<unknown>[] = [];
  private head = 0;
  /** Entries in the queue (after head) whose window already dropped them. */
  private stale = 0;
  private used = 0;

  constructor(readonly limitBytes: number) {}

  /** Bytes held by all windows now. */
  get usedBytes(): number {
    return this.used;
  }

  /** Events held by all windows now. */
  get liveEntries(): number {
    return this.queue.length - this.head - this.stale;
  }

  /** Entries in the queue, live or not yet passed over: at most about twice the live ones. */
  get queuedEntries(): number {
    return this.queue.length - this.head;
  }

  /** Counts an entry a window just took, then evicts the oldest events of all windows until under the limit. */
  charge(entry: BudgetEntry<unknown>): void {
    if (entry.dropped) return;
    this.queue.push(entry);
    this.used += entry.bytes;
    while (this.used > this.limitBytes && this.head < this.queue.length) {
      const oldest = this.queue[this.head]!;
      if (oldest.dropped) {
        this.skipHead();
        continue;
      }
      oldest.holder!.evictOldest(oldest);
      // A holder that failed to release it would loop here for ever: the entry goes anyway.
      this.release(oldest);
    }
  }

  /** A window dropped this entry (by its own caps, a clear, or at the budget's request). */
  release(entry: BudgetEntry<unknown>): void {
    if (!entry.drop()) return;
    this.used -= entry.bytes;
    this.stale++;
    while (this.head < this.queue.length && this.queue[this.head]!.dropped) this.skipHead();
    if (this.stale > COMPACT_MIN && this.stale > this.liveEntries) this.compact();
  }

  /** Passes over a dropped entry at the head; the array is cut down once most of it is behind the head. */
  private skipHead(): void {
    this.head++;
    this.stale--;
    if (this.head > COMPACT_MIN && this.head * 2 > this.queue.length) this.compact();
  }

  private compact(): void {
    this.queue = this.queue.slice(this.head).filter((e) => !e.dropped);
    this.head = 0;
    this.stale = 0;
  }
}
