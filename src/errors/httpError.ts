/**
 * The contract's errors as values: a status, a code from a closed list, a message saying what to do,
 * and the headers and extra body fields that go with them. Thrown anywhere a request is refused (auth,
 * limits, routes); answered as JSON by the HTTP layer (http/errors.ts). A leaf module: it imports
 * nothing, so every layer may use it.
 */
/** `error` of the JSON body: `{"error": "<code>", "message": "<what to do>"}`. */
export type ErrorCode =
  | "bad_request"
  | "invalid_json"
  | "invalid_match"
  | "invalid_event"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "too_large"
  | "too_many_matches"
  | "headers_too_large"
  | "unsupported_media_type"
  | "rate_limited"
  | "at_capacity"
  | "not_ready"
  | "draining"
  | "publish_failed"
  | "publish_outcome_unknown"
  | "state_too_large"
  | "event_too_large"
  | "match_ended"
  | "internal_error";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    /** More fields of the JSON body (a batch's `index`, `stored` and `results`). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * 503 while this node cannot serve (not connected to NATS or not yet in the cluster, or the thing asked
 * for is not ready on it): nothing was done, retrying (through the balancer, perhaps elsewhere) is safe.
 */
export function notReady(what = "this node is not connected to NATS and the cluster right now"): HttpError {
  return new HttpError(503, "not_ready", `${what}; nothing was done, retry`, { "Retry-After": "1" });
}
