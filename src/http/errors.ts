/** The contract's JSON errors: `{"error": "<code>", "message": "<what to do>"}` with the right status. */
import type { HttpError } from "../errors/httpError.ts";

export { HttpError, notReady, type ErrorCode } from "../errors/httpError.ts";

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
