/**
 * Token bucket, as plain functions on a two-number state so that a limiter can hold many of them
 * cheaply. A bucket holds up to `burst` tokens and gains `perSecond` tokens a second; each admitted
 * action takes one. Time is passed in (milliseconds, monotonic) so tests need no clock.
 */

export interface BucketRate {
  /** Tokens gained per second (the sustained rate). */
  perSecond: number;
  /** Most tokens held (how many actions may come at once after a quiet spell). */
  burst: number;
}

export interface TokenBucket {
  tokens: number;
  updatedAt: number;
}

const MS_PER_SECOND = 1000;

export function fullBucket(rate: BucketRate, now: number): TokenBucket {
  return { tokens: rate.burst, updatedAt: now };
}

/** How long a bucket takes to refill from empty: after that long untouched, any bucket is full. */
export function refillMs(rate: BucketRate): number {
  return (rate.burst / rate.perSecond) * MS_PER_SECOND;
}

function refill(bucket: TokenBucket, rate: BucketRate, now: number): void {
  // A clock that went backwards (it should not, being monotonic) adds nothing rather than removing.
  const elapsed = Math.max(0, now - bucket.updatedAt);
  bucket.tokens = Math.min(rate.burst, bucket.tokens + (elapsed * rate.perSecond) / MS_PER_SECOND);
  bucket.updatedAt = now;
}

/**
 * Takes `count` tokens (one action, or a batch of `count`): returns 0 when taken, else the milliseconds
 * until a token will be there (nothing taken). A batch larger than what the bucket holds is let through
 * while a token is there and leaves the bucket in debt, so it counts in full against the sustained rate
 * without being refused forever when it is larger than `burst`.
 */
export function tryTake(bucket: TokenBucket, rate: BucketRate, now: number, count = 1): number {
  refill(bucket, rate, now);
  if (bucket.tokens >= 1) {
    bucket.tokens -= count;
    return 0;
  }
  return ((1 - bucket.tokens) / rate.perSecond) * MS_PER_SECOND;
}
