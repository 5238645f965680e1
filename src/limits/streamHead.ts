/**
 * HEAD on a stream URL is answered here, with the stream's headers and no stream behind them.
 *
 * Elysia serves HEAD by running the GET handler. On a path with a trailing slash
 * (`HEAD /matches/m1/events/`) the stream that handler opened was never answered and, once the client
 * hung up, never closed: found by the fuzz test, each such request leaked a stream (and its
 * per-address slot) for the life of the process, so a few thousand of them filled a node for good.
 */
import { SSE_HEADERS } from "../stream/streamRegistry.ts";

/** `/events` or `/matches/{match}/events`, with any trailing or doubled slashes. */
const STREAM_PATH = /^\/+(?:events|matches\/+[^/]+\/+events)\/*$/;

export function headOfStream(request: Request): Response | undefined {
  if (request.method !== "HEAD") return undefined;
  const url = request.url;
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const queryStart = url.indexOf("?", pathStart);
  const path = pathStart === -1 ? "/" : url.slice(pathStart, queryStart === -1 ? undefined : queryStart);
  return STREAM_PATH.test(path) ? new Response(null, { status: 200, headers: SSE_HEADERS }) : undefined;
}
