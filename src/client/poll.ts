/**
 * Long-polling fallback for networks that break streaming: `GET /matches/{match}/poll?after=<id>`
 * answers the events after `after` as JSON, waiting a bounded time when there are none. Its ids are a
 * single match's stream ids, so a client can switch between polling and a `/matches/{match}/events`
 * stream in either direction.
 */
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { httpErrorFrom, TouchlineHttpError, TouchlineProtocolError } from "./errors.ts";
import type { FetchLike, Json } from "./types.ts";
import { pollUrl } from "./urls.ts";

export interface PolledEvent<TData = unknown> {
  id: string;
  type: string;
  data: TData;
  ts: number;
  /** The event's merge patch, when the server includes it. */
  state?: Json;
}

/** Sent instead of events when `after` is missing, unknown or older than retention. */
export interface PolledSnapshot {
  type: "snapshot";
  /** The latest event id the state includes; "0" when the match has no events yet. */
  id: string;
  state: Json;
}

export interface PollResult<TData = unknown> {
  events: PolledEvent<TData>[];
  snapshot?: PolledSnapshot;
  /** Pass as `after` next time: the last id answered, or `after` itself when nothing came. */
  next: string;
}

export interface PollOptions {
  /** Events after this id; without one the server decides where to start. */
  after?: string;
  token?: string | (() => string | Promise<string>);
  headers?: Record<string, string>;
  fetch?: FetchLike;
  signal?: AbortSignal;
  /** How long the server may hold the request when there is nothing new (it caps this at its own limit). */
  waitMs?: number;
  /** Gives up on one request after this long (the server's own wait is shorter). */
  timeoutMs?: number;
}

/** `after=0`: from the first retained event. */
const NO_EVENTS_ID = "0";

/** Longer than any server-side wait, so a healthy poll is never cut short by the client. */
export const DEFAULT_POLL_TIMEOUT_MS = 60_000;

/** One long poll. Rejects with TouchlineHttpError on an error answer, or the abort reason. */
export async function poll<TData = unknown>(baseUrl: string | URL, match: string, options: PollOptions = {}): Promise<PollResult<TData>> {
  const abort = new AbortController();
  // AbortSignal.any is missing before Node 20.3: link the caller's signal and the timeout by hand.
  const onCallerAbort = () => abort.abort(options.signal?.reason);
  if (options.signal?.aborted) onCallerAbort();
  options.signal?.addEventListener("abort", onCallerAbort, { once: true });
  const timer = setTimeout(
    () => abort.abort(new Error(`poll took over ${options.timeoutMs ?? DEFAULT_POLL_TIMEOUT_MS} ms`)),
    options.timeoutMs ?? DEFAULT_POLL_TIMEOUT_MS,
  );
  try {
    const headers = new Headers(options.headers);
    headers.set("accept", "application/json");
    const token = typeof options.token === "function" ? await options.token() : options.token;
    if (token) headers.set("authorization", `Bearer ${token}`);
    const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    const res = await fetchImpl(pollUrl(baseUrl, match, options.after, options.waitMs), { headers, signal: abort.signal, cache: "no-store" });
    if (!res.ok) throw await httpErrorFrom(res);
    return parsePollBody<TData>(await res.json(), options.after ?? "");
  } catch (error) {
    throw abort.signal.aborted && abort.signal.reason !== undefined ? abort.signal.reason : error;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onCallerAbort);
  }
}

export interface PollEventsOptions extends Omit<PollOptions, "signal"> {
  /** Stops the loop (the generator then returns). */
  signal?: AbortSignal;
  backoff?: BackoffOptions;
  /** Transient failures (network, 429, 5xx) before giving up; default: never give up. */
  maxFailures?: number;
  onError?(error: Error): void;
}

/**
 * Polls for ever, yielding each event once, in order (a snapshot first when the server could not resume
 * from `after`); retries transient failures with full-jitter
 * backoff and throws on fatal ones (401, 404, ...). Ends when `signal` aborts.
 */
export async function* pollEvents<TData = unknown>(
  baseUrl: string | URL,
  match: string,
  options: PollEventsOptions = {},
): AsyncGenerator<PolledEvent<TData> | PolledSnapshot> {
  const backoff = new Backoff(options.backoff);
  let after = options.after ?? "";
  let failures = 0;
  while (!options.signal?.aborted) {
    let result: PollResult<TData>;
    try {
      result = await poll<TData>(baseUrl, match, { ...options, after });
    } catch (error) {
      if (options.signal?.aborted) return;
      const err = error instanceof Error ? error : new Error(String(error));
      if ((err instanceof TouchlineHttpError && err.isFatal) || err instanceof TouchlineProtocolError) throw err;
      failures++;
      if (options.maxFailures !== undefined && failures > options.maxFailures) throw err;
      options.onError?.(err);
      const floor = err instanceof TouchlineHttpError ? (err.retryAfterMs ?? 0) : 0;
      if (!(await sleep(backoff.next(floor), options.signal))) return;
      continue;
    }
    failures = 0;
    backoff.reset();
    if (result.snapshot) yield result.snapshot;
    for (const event of result.events) yield event;
    after = result.next;
  }
}

function parsePollBody<TData>(body: unknown, after: string): PollResult<TData> {
  const b = body as { events?: unknown; next?: unknown; snapshot?: { id?: unknown; state?: Json } } | null;
  if (typeof b !== "object" || b === null || !Array.isArray(b.events)) {
    throw new TouchlineProtocolError('poll answer is not {"events": [...], "next": "<id>"}');
  }
  const events = b.events.map((e: unknown) => {
    const x = e as { id?: unknown; type?: unknown; data?: unknown; ts?: unknown; state?: Json };
    if (typeof x?.id !== "string" || typeof x.type !== "string") throw new TouchlineProtocolError("poll event without id or type");
    const event: PolledEvent<TData> = { id: x.id, type: x.type, data: (x.data ?? null) as TData, ts: typeof x.ts === "number" ? x.ts : 0 };
    if (x.state !== undefined) event.state = x.state;
    return event;
  });
  const result: PollResult<TData> = { events, next: after };
  if (typeof b.snapshot === "object" && b.snapshot !== null) {
    // A snapshot of a match with no events has no id: "0" then asks for everything from the first event.
    const id = typeof b.snapshot.id === "string" && b.snapshot.id !== "" ? b.snapshot.id : NO_EVENTS_ID;
    result.snapshot = { type: "snapshot", id, state: b.snapshot.state ?? {} };
    result.next = id;
  }
  if (typeof b.next === "string" && b.next !== "") result.next = b.next;
  else if (events.length > 0) result.next = events.at(-1)!.id;
  return result;
}

/** Resolves true after ms, or false at once when the signal aborts (the timer is cleared either way). */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
