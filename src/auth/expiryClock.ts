/**
 * ExpiryClock: runs callbacks at given times with one timer for the whole node, however many streams
 * wait on it (a timer per stream would cost memory and wake-ups at 10,000 streams). Deadlines sit in a
 * binary min-heap; a cancelled entry is skipped when it comes up, and the heap is rebuilt when most of
 * it is cancelled so streams that ended early do not pile up.
 */

/** setTimeout fires at once for delays past 2^31-1 ms; longer waits are taken in steps. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;
/** Rebuild when cancelled entries outnumber live ones and there are at least this many. */
const COMPACT_MIN_ENTRIES = 64;

interface Entry {
  at: number;
  fire: () => void;
  cancelled: boolean;
}

export class ExpiryClock {
  private heap: Entry[] = [];
  private cancelledCount = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;

  constructor(private readonly now: () => number = Date.now) {}

  /** Entries waiting, cancelled ones included until they are swept out. */
  get size(): number {
    return this.heap.length;
  }

  /** Runs `fire` at `at` (ms since the epoch), or on the next turn if that has passed. Returns a cancel. */
  schedule(at: number, fire: () => void): () => void {
    const entry: Entry = { at, fire, cancelled: false };
    this.push(entry);
    this.arm();
    return () => {
      if (entry.cancelled) return;
      entry.cancelled = true;
      this.cancelledCount++;
      if (this.cancelledCount > COMPACT_MIN_ENTRIES && this.cancelledCount * 2 > this.heap.length) this.compact();
    };
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    this.heap = [];
    this.cancelledCount = 0;
  }

  private arm(): void {
    const next = this.heap[0];
    if (!next || next.at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = next.at;
    this.timer = setTimeout(() => this.tick(), Math.min(MAX_TIMER_DELAY_MS, Math.max(0, next.at - this.now())));
  }

  private tick(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.now();
    for (let top = this.heap[0]; top && top.at <= now; top = this.heap[0]) {
      this.pop();
      if (top.cancelled) {
        this.cancelledCount--;
        continue;
      }
      top.cancelled = true; // a late cancel() is then a no-op
      try {
        top.fire();
      } catch {
        // One stream's close failing must not stop the others from expiring.
      }
    }
    this.arm();
  }

  private compact(): void {
    const live = this.heap.filter((e) => !e.cancelled);
    this.heap = [];
    this.cancelledCount = 0;
    for (const e of live) this.push(e);
  }

  private push(entry: Entry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= entry.at) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = entry;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (!last || h.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= h.length) break;
      const right = left + 1;
      const child = right < h.length && h[right]!.at < h[left]!.at ? right : left;
      if (h[child]!.at >= last.at) break;
      h[i] = h[child]!;
      i = child;
    }
    h[i] = last;
  }
}
