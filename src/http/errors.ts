/** The contract's JSON errors: `{"error": "<code>", "message": "<what to do>"}` with the right status. */
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

export function errorResponse(err: HttpError): Response {
  return new Response(JSON.stringify({ error: err.code, message: err.message, ...err.details }), {
    status: err.status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...err.headers },
  });
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}
