/**
 * Refusing a stream request in a form a browser survives. EventSource gives up for good on any non-200
 * answer, so a stream refused because this node is full, draining, not connected, or the client is over
 * a rate limit is answered 200 `text/event-stream`: `retry:` set to the wait (with jitter, so refused
 * clients do not come back together), one `touchline.refused` event without an id (the client's
 * Last-Event-ID stays where it was), then the end of the stream. EventSource comes back by itself,
 * through the balancer, to whichever node it picks. 401 and 403 stay real statuses.
 */
import { encodeMessage, encodeRetry } from "../sse/encode.ts";
import { SSE_HEADERS } from "../sse/headers.ts";
import type { HttpError } from "./errors.ts";

const REFUSED_EVENT = "touchline.refused";

/** Statuses a stream request is refused with in the SSE form instead. */
export function refusableAsStream(err: HttpError): boolean {
  return err.status === 503 || err.status === 429;
}

/** The wait the refusal asks for: its Retry-After (seconds), at least `minMs`, plus up to 50% jitter. */
export function refusalWaitMs(err: HttpError, minMs: number, random: () => number = Math.random): number {
  const retryAfter = Number(err.headers["Retry-After"]);
  const base = Math.max(minMs, Number.isFinite(retryAfter) ? retryAfter * 1000 : 0);
  return Math.round(base * (1 + random() / 2));
}

export function refusedStream(err: HttpError, waitMs: number): Response {
  const body =
    encodeRetry(waitMs) + encodeMessage({ event: REFUSED_EVENT, data: JSON.stringify({ error: err.code, message: err.message, retryAfterMs: waitMs }) });
  return new Response(body, { status: 200, headers: SSE_HEADERS });
}
