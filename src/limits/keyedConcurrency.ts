/**
 * How many things (open streams, held long polls) each key holds now, capped per key. An entry lives
 * only while its count is above zero, so the map never holds more keys than there are open
 * connections: its memory is bounded by the node's connection limits, with no sweep needed.
 */

export type Release = () => void;

export class KeyedConcurrency {
  private readonly counts = new Map<string, number>();

  constructor(private readonly maxPerKey: number) {
    if (!(maxPerKey >= 1)) throw new RangeError("maxPerKey must be at least 1");
  }

  /** Keys holding at least one slot. */
  get size(): number {
    return this.counts.size;
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Takes a slot for `key`: a release function (safe to call more than once), or undefined at the cap. */
  tryAcquire(key: string): Release | undefined {
    const held = this.counts.get(key) ?? 0;
    if (held >= this.maxPerKey) return undefined;
    this.counts.set(key, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = (this.counts.get(key) ?? 1) - 1;
      if (now <= 0) this.counts.delete(key);
      else this.counts.set(key, now);
    };
  }
}
