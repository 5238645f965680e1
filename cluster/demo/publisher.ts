/**
 * Publishes demo events over the HTTP API and keeps at it until each one is stored. Every event has an
 * idempotency key, and a retry reuses it, so a request that was stored but whose answer was lost (node
 * killed, connection cut by the balancer) is not stored twice: the server answers `duplicate`.
 */
import type { DemoEvent } from "./matchSim.ts";

export type PublishOutcome = "stored" | "duplicate" | "rejected" | "stopped";

export interface PublishCounts {
  stored: number;
  duplicates: number;
  retries: number;
  rejected: number;
}

export interface PublisherOptions {
  baseUrl: string;
  /** Bearer token for a cluster started with TOUCHLINE_JWT_SECRET. */
  token?: string;
  /** Aborted when the producer stops: no new attempt starts and retry waits are cut short. */
  signal: AbortSignal;
  log: (line: string) => void;
}

const REQUEST_TIMEOUT_MS = 10_000;
const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 10_000;
/** 503 (not ready, draining, at capacity), 429 (rate limited), and the answers of a proxy whose node went away. */
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

export class Publisher {
  readonly counts: PublishCounts = { stored: 0, duplicates: 0, retries: 0, rejected: 0 };
  private readonly reportedRejections = new Set<string>();

  constructor(private readonly opts: PublisherOptions) {}

  /** Publishes until stored; `once` makes a single attempt that ignores the stop signal (for the last words). */
  async publish(match: string, event: DemoEvent, key: string, opts: { once?: boolean } = {}): Promise<PublishOutcome> {
    const url = `${this.opts.baseUrl}/matches/${encodeURIComponent(match)}/events`;
    const body = JSON.stringify({ type: event.type, data: event.data, state: event.state, key, ...(event.final ? { final: true } : {}) });
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    for (let attempt = 0; ; attempt++) {
      if (this.opts.signal.aborted && !opts.once) return "stopped";
      let retryAfterMs = 0;
      try {
        const res = await fetch(url, {
          method: "POST",
          headers,
          body,
          // Not cut by the stop signal: a request already sent is let finish, so stopping leaves no
          // event in doubt; only further retries are given up.
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const text = await res.text();
        if (res.status === 201) {
          this.counts.stored++;
          return "stored";
        }
        if (res.status === 200 && /"duplicate"\s*:\s*true/.test(text)) {
          this.counts.duplicates++;
          return "duplicate";
        }
        if (!RETRYABLE_STATUS.has(res.status)) {
          this.counts.rejected++;
          this.reportRejection(res.status, text);
          return "rejected";
        }
        retryAfterMs = Number(res.headers.get("retry-after") ?? 0) * 1000 || 0;
      } catch {
        // Connection refused or reset, or the request timed out: the event may or may not be stored,
        // which is what the idempotency key is for.
      }
      if (this.opts.signal.aborted || opts.once) return "stopped";
      this.counts.retries++;
      // Full jitter, so a cluster coming back is not hit by every match at the same instant.
      const backoff = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      await abortableSleep(Math.max(retryAfterMs, backoff), this.opts.signal);
    }
  }

  /** Says once per kind of rejection why events are refused, instead of once per event. */
  private reportRejection(status: number, body: string): void {
    const code = /"error"\s*:\s*"([^"]+)"/.exec(body)?.[1] ?? "";
    const kind = `${status} ${code}`;
    if (this.reportedRejections.has(kind)) return;
    this.reportedRejections.add(kind);
    this.opts.log(`producer: events refused with ${kind}: ${body.slice(0, 200)} (further ones are counted, not logged)`);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
