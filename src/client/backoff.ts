/**
 * Reconnect delays: exponential backoff with full jitter (uniform in [0, min(max, base·2^attempt)]),
 * where base is the server's `retry` once it sent one. Full jitter spreads the thousands of clients of
 * a node that just died over the whole window instead of letting them return in waves.
 */
export interface BackoffOptions {
  /** Base delay until the server sends `retry:` (the server's default RETRY_MS). */
  initialMs?: number;
  /** Ceiling of the window. */
  maxMs?: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number;
}

export const DEFAULT_INITIAL_MS = 1_000;
export const DEFAULT_MAX_MS = 30_000;
/** 2^MAX_EXPONENT·base is far past any ceiling; capping the exponent keeps the arithmetic finite. */
const MAX_EXPONENT = 30;

export class Backoff {
  private attempt = 0;
  private baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.initialMs ?? DEFAULT_INITIAL_MS;
    this.maxMs = options.maxMs ?? DEFAULT_MAX_MS;
    this.random = options.random ?? Math.random;
  }

  /** Failed attempts since the last healthy connection. */
  get attempts(): number {
    return this.attempt;
  }

  /** The server's `retry:` becomes the base of the window. */
  setBase(ms: number): void {
    this.baseMs = ms;
  }

  /** Upper bound of the next delay. */
  window(): number {
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, MAX_EXPONENT));
  }

  /** The next delay; never below `floorMs` (a `Retry-After`). Counts one more attempt. */
  next(floorMs = 0): number {
    const delay = Math.floor(this.random() * this.window());
    this.attempt++;
    return Math.max(delay, floorMs);
  }

  /** A connection proved healthy: start again from the base window. */
  reset(): void {
    this.attempt = 0;
  }
}
