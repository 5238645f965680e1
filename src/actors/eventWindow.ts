/**
 * A bounded window of a match's most recent events, oldest first. Reconnecting clients are served from
 * here without touching JetStream (invariant 8).
 */
import type { EncodedEvent } from "./encodedEvent.ts";

export class EventWindow {
  private items: EncodedEvent[] = [];
  private head = 0;

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.items.length - this.head;
  }

  push(e: EncodedEvent): void {
    this.items.push(e);
    if (this.size > this.capacity) {
      this.head++;
      // Compact now and then so the array does not grow without bound.
      if (this.head >= this.capacity) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
    }
  }

  /** Seq of the event before the oldest one held: the window covers every id >= this. */
  get coversFrom(): number | undefined {
    return this.items[this.head]?.event.prev;
  }

  /** Events with seq > afterSeq, or undefined when the window does not reach back that far. */
  after(afterSeq: number): EncodedEvent[] | undefined {
    const from = this.coversFrom;
    if (from === undefined || afterSeq < from) return undefined;
    const out: EncodedEvent[] = [];
    for (let i = this.items.length - 1; i >= this.head; i--) {
      const e = this.items[i]!;
      if (e.seq <= afterSeq) break;
      out.push(e);
    }
    return out.reverse();
  }

  /** The newest `max` events, for a sync reply. */
  newest(max: number): EncodedEvent[] {
    return this.items.slice(Math.max(this.head, this.items.length - max));
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
