/** The contract's JSON errors: `{"error": "<code>", "message": "<what to do>"}` with the right status. */
import type { HttpError } from "../errors/httpError.ts";

export { HttpError, notReady, type ErrorCode } from "../errors/httpError.ts";

export function errorResponse(err: HttpError): Response {
  return json({ error: err.code, message: err.message, ...err.details }, err.status, err.headers);
}

/**
 * A JSON answer. Its Content-Length is set here, where the text is at hand: compression (compression.ts)
 * then sees at once that a short answer (an error, `/healthz`) is not worth encoding, instead of
 * reading the body back to measure it (json() and compression: 1.9 against 4.6 µs per answer). A
 * publish's `{"id"}` is a shortJson, below, which skips that look altogether.
 */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  const text = JSON.stringify(body);
  return new Response(text, {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", "Content-Length": String(Buffer.byteLength(text)), ...headers },
  });
}

/**
 * Headers of every short answer: final as they are (Bun adds the length of a text body itself). One
 * Headers object, which each Response copies (a plain object is converted into one every time); an
 * answer's own headers (CORS) are set on its copy.
 */
const SHORT_JSON_HEADERS = new Headers({ "Content-Type": "application/json; charset=utf-8", Vary: "Accept-Encoding" });
/** Answers built complete by shortJson: the way out (app.ts, `finish`) has nothing to add but CORS. */
const completeAnswers = new WeakSet<Response>();

/**
 * A JSON answer known to stay short (a publish's `{"id"}`: well under compression's threshold), built
 * with its final headers in one go: every publish is answered with one, and building a Response's
 * headers one by one, then reading them back to decide against compressing, was about a twentieth of
 * a publish's CPU.
 */
export function shortJson(body: unknown, status: number): Response {
  const response = new Response(JSON.stringify(body), { status, headers: SHORT_JSON_HEADERS });
  completeAnswers.add(response);
  return response;
}

/** Whether `response` came from shortJson (nothing to compress, its Vary already said). */
export function isCompleteAnswer(response: Response): boolean {
  return completeAnswers.has(response);
}
