/**
 * Publishing from the typed client: one event (`POST /matches/{match}/events`) or a batch
 * (`POST /events`). Answers are the node's ids; errors are TouchlineHttpError. A 503 whose outcome is
 * unknown (`publish_outcome_unknown`) is safe to retry only with the same keys: give every event a key
 * when you retry.
 */
import { httpErrorFrom, TouchlineHttpError } from "./errors.ts";
import type { FetchLike, Json } from "./types.ts";

export interface PublishEvent {
  type: string;
  data?: Json;
  /** A JSON merge patch applied to the match's state. */
  state?: Json;
  /** Idempotency key: the same key for the same match within the dedupe window stores the event once. */
  key?: string;
  private?: boolean;
}

export interface BatchEvent extends PublishEvent {
  match: string;
}

export interface Published {
  id: string;
  /** The key was seen before: nothing was stored, `id` is the first event's. */
  duplicate?: true;
}

export interface PublishOptions {
  token?: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
}

/** A batch that stopped part-way: `results` are the items stored before the first unconfirmed one. */
export class TouchlineBatchError extends TouchlineHttpError {
  constructor(
    base: TouchlineHttpError,
    readonly stored: number,
    readonly results: Published[],
  ) {
    super(base.status, base.code, base.message, base.retryAfterMs);
  }
}

function post(url: string, body: unknown, opts: PublishOptions): Promise<Response> {
  const doFetch = opts.fetch ?? fetch;
  return doFetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}) },
    body: JSON.stringify(body),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/** Publishes one event to `match`; resolves once the node has stored it. */
export async function publish(baseUrl: string, match: string, event: PublishEvent, opts: PublishOptions = {}): Promise<Published> {
  const res = await post(`${baseUrl.replace(/\/$/, "")}/matches/${encodeURIComponent(match)}/events`, event, opts);
  if (res.status !== 200 && res.status !== 201) throw await httpErrorFrom(res);
  return (await res.json()) as Published;
}

/**
 * Publishes several events in one request, stored in order; resolves with one result per event, in
 * order. Throws TouchlineBatchError (with what was stored) when storing stopped part-way.
 */
export async function publishBatch(baseUrl: string, events: BatchEvent[], opts: PublishOptions = {}): Promise<Published[]> {
  const res = await post(`${baseUrl.replace(/\/$/, "")}/events`, events, opts);
  if (res.status === 201) return ((await res.json()) as { results: Published[] }).results;
  const partial =
    res.status === 503
      ? ((await res
          .clone()
          .json()
          .catch(() => undefined)) as { stored?: number; results?: Published[] } | undefined)
      : undefined;
  const err = await httpErrorFrom(res);
  if (partial && typeof partial.stored === "number" && Array.isArray(partial.results)) throw new TouchlineBatchError(err, partial.stored, partial.results);
  throw err;
}
