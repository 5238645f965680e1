/**
 * A bounded window of a match's most recent events, oldest first. Reconnecting clients are served from
 * here without touching JetStream (invariant 8 of docs/design.md).
 *
 * Bounded by count (WINDOW_EVENTS) and by bytes (WINDOW_BYTES), and charged to the node-wide
 * WindowBudget, which may take this window's oldest events when all windows together hold too much: a
 * match of 64 KiB events holds a few of them, not thousands. The events held are always a contiguous
 * run ending at the newest, so `coversFrom` stays exact whatever was dropped.
 */
import type { EncodedEvent } from "./encodedEvent.ts";
import { BudgetEntry, type BudgetHolder, type WindowBudget } from "./windowBudget.ts";

/** What the window needs of an event (EncodedEvent has it). */
export interface WindowEvent {
  readonly seq: number;
  /** The seq before this event, so the window knows where its coverage starts. */
  readonly prev: number;
  /** What the window counts as the event's bytes: what holding it costs (EncodedEvent: its frame and its objects). */
  readonly size: number;
}

/** Dropped entries tolerated at the front of a window's array before it is compacted. */
const COMPACT_MIN = 32;

/**
 * What a window holds, kept apart from the EventWindow object itself: the budget's entries point here,
 * not at the window, so a window its actor let go of can be collected, and its events given back.
 */
class WindowStore<E extends WindowEvent> implements BudgetHolder {
  private entries: BudgetEntry<E>[] = [];
  private head = 0;
  bytes = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
    private readonly budget: WindowBudget | undefined,
  ) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  oldest(): E | undefined {
    return this.entries[this.head]?.item;
  }

  /** Events with seq > afterSeq, oldest first (found from the newest back: resumes are mostly recent). */
  after(afterSeq: number): E[] {
    let i = this.entries.length;
    while (i > this.head && this.entries[i - 1]!.item!.seq > afterSeq) i--;
    return this.entries.slice(i).map((x) => x.item!);
  }

  newest(max: number): E[] {
    return this.entries.slice(Math.max(this.head, this.entries.length - max)).map((x) => x.item!);
  }

  push(e: E): void {
    const bytes = e.size;
    if (bytes > this.maxBytes) {
      // It cannot be held, and older events without it would not be contiguous with what comes next:
      // the window starts again after it, and resumes from before go to JetStream.
      this.clear();
      return;
    }
    const entry = new BudgetEntry<E>(e, bytes, this);
    this.entries.push(entry);
    this.bytes += bytes;
    while (this.size > this.maxEvents || this.bytes > this.maxBytes) this.dropOldest();
    // Last, so the budget sees this window's own trimming first and may take from any window, this one too.
    this.budget?.charge(entry);
  }

  /** The budget's oldest entry is this window's oldest; dropping up to it keeps the window contiguous regardless. */
  evictOldest(entry: BudgetEntry<unknown>): void {
    while (this.size > 0 && !entry.dropped) this.dropOldest();
  }

  private dropOldest(): void {
    const entry = this.entries[this.head++]!;
    this.bytes -= entry.bytes;
    if (this.budget) this.budget.release(entry);
    else entry.drop();
    if (this.head >= COMPACT_MIN && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    while (this.size > 0) this.dropOldest();
    this.entries = [];
    this.head = 0;
  }
}

/** Windows dropped without a clear() give their events and bytes back when collected. */
const abandoned = new FinalizationRegistry<{ clear(): void }>((store) => store.clear());

export class EventWindow<E extends WindowEvent = EncodedEvent> {
  private readonly store: WindowStore<E>;

  /**
   * `maxBytes` and `budget` bound the window by bytes as well (without them, by count alone). A window
   * charged to a budget needs no explicit clear when dropped: it gives its bytes back once collected.
   */
  constructor(maxEvents: number, maxBytes = Number.POSITIVE_INFINITY, budget?: WindowBudget) {
    this.store = new WindowStore<E>(maxEvents, maxBytes, budget);
    if (budget) abandoned.register(this, this.store);
  }

  get size(): number {
    return this.store.size;
  }

  /** Bytes of the events held (see WindowEvent.size). */
  get bytes(): number {
    return this.store.bytes;
  }

  push(e: E): void {
    this.store.push(e);
  }

  /** Seq of the event before the oldest one held: the window covers every id >= this. */
  get coversFrom(): number | undefined {
    return this.store.oldest()?.prev;
  }

  /** Events with seq > afterSeq, or undefined when the window does not reach back that far. */
  after(afterSeq: number): E[] | undefined {
    const from = this.coversFrom;
    if (from === undefined || afterSeq < from) return undefined;
    return this.store.after(afterSeq);
  }

  /** The newest `max` events, for a sync reply. */
  newest(max: number): E[] {
    return this.store.newest(max);
  }

  /** Drops every event (and gives their bytes back to the budget). */
  clear(): void {
    this.store.clear();
  }
}
