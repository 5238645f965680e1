/**
 * One token bucket per key (a client address, a publisher's token), in bounded memory.
 *
 * The map is kept in least-recently-used order (a touched key moves to the end). A bucket untouched for
 * its whole refill time is full, the same as a bucket never seen, so `sweep()` drops such entries from
 * the front and stops at the first younger one: dropping them forgets nothing. Past `maxKeys` (a scan
 * from many addresses) the least recently used key is dropped at once, which may hand that key a full
 * bucket again later: at that point per-key limits cannot hold anyway, and the node-wide caps
 * (MAX_CONNECTIONS) still do.
 */
import { fullBucket, refillMs, tryTake, type BucketRate, type TokenBucket } from "./tokenBucket.ts";

export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly idleMs: number;
  /** Keys dropped while the map was full (not by the idle sweep). */
  evictions = 0;

  constructor(
    private readonly rate: BucketRate,
    private readonly maxKeys: number,
  ) {
    if (!(rate.perSecond > 0) || !(rate.burst >= 1)) throw new RangeError("a rate limiter needs perSecond > 0 and burst >= 1");
    if (!(maxKeys >= 1)) throw new RangeError("maxKeys must be at least 1");
    this.idleMs = refillMs(rate);
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes `count` tokens for `key` (see tryTake): 0 when allowed, else the milliseconds until the key may try again. */
  take(key: string, now: number, count = 1): number {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
    } else {
      if (this.buckets.size >= this.maxKeys) this.makeRoom(now);
      bucket = fullBucket(this.rate, now);
    }
    this.buckets.set(key, bucket);
    return tryTake(bucket, this.rate, now, count);
  }

  /** Drops every entry idle for its whole refill time; returns how many. Cost: the entries dropped, plus one. */
  sweep(now: number): number {
    let dropped = 0;
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.updatedAt < this.idleMs) break;
      this.buckets.delete(key);
      dropped++;
    }
    return dropped;
  }

  private makeRoom(now: number): void {
    if (this.sweep(now) > 0) return;
    const oldest = this.buckets.keys().next();
    if (oldest.done) return;
    this.buckets.delete(oldest.value);
    this.evictions++;
  }
}
