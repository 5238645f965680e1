/**
 * Which requests are stream requests, and HEAD on a stream URL, answered here with the stream's
 * headers and no stream behind them.
 *
 * Elysia serves HEAD by running the GET handler. On a path with a trailing slash
 * (`HEAD /matches/m1/events/`) the stream that handler opened was never answered and, once the client
 * hung up, never closed: found by the fuzz test, each such request leaked a stream (and its
 * per-address slot) for the life of the process, so a few thousand of them filled a node for good.
 */
import { SSE_HEADERS } from "../sse/headers.ts";

/** `/events` or `/matches/{match}/events`, with any trailing or doubled slashes. */
const STREAM_PATH = /^\/+(?:events|matches\/+[^/]+\/+events)\/*$/;

/** The request's path, without its query, as the client sent it. */
function pathOf(request: Request): string {
  const url = request.url;
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const queryStart = url.indexOf("?", pathStart);
  return pathStart === -1 ? "/" : url.slice(pathStart, queryStart === -1 ? undefined : queryStart);
}

/** A GET of a stream URL: its head may carry a long resume id (see NodeLimits.checkHeaders). */
export function isStreamRequest(request: Request): boolean {
  return request.method === "GET" && STREAM_PATH.test(pathOf(request));
}

export function headOfStream(request: Request): Response | undefined {
  if (request.method !== "HEAD") return undefined;
  return STREAM_PATH.test(pathOf(request)) ? new Response(null, { status: 200, headers: SSE_HEADERS }) : undefined;
}
