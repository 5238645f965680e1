/** The response headers of every event stream (and of a refusal in the stream form). */

/**
 * `Connection: close`: when a stream ends (refused, rotated, drained, paged) its TCP connection ends with
 * it, so the client's reconnect opens a new one, which an L4 balancer may send to another node. With
 * keep-alive a client reused the connection and came back to the same node: a refused client was
 * refused forever, a rotated stream never moved. A stream is the only request on its connection anyway.
 */
export const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
  Connection: "close",
} as const;
