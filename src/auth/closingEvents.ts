/**
 * The last event a stream gets when its authorization ends, so a client can tell "get a new token" from
 * a network drop. They carry no `id`: the client's Last-Event-ID stays at the last match event, and it
 * resumes from there with a fresh token. The `touchline.` prefix is reserved, so no producer can fake them.
 */
import { encodeMessage } from "../sse/encode.ts";

const EXPIRED_EVENT = "touchline.expired";
const FORBIDDEN_EVENT = "touchline.forbidden";

/** The token the stream was opened with reached its `exp`. */
export function expiredFrame(expiresAt: number): string {
  return encodeMessage({
    event: EXPIRED_EVENT,
    data: JSON.stringify({
      reason: "token_expired",
      expiredAt: expiresAt,
      message: "the token this stream was opened with has expired; reconnect with a new token and lastEventId to resume",
    }),
  });
}

/** A match on the stream turned private and the stream's token (if any) does not cover it. */
export function forbiddenFrame(match: string): string {
  return encodeMessage({
    event: FORBIDDEN_EVENT,
    data: JSON.stringify({
      reason: "match_private",
      match,
      message: `match ${match} is now private; subscribing to it needs a token whose touchline.subscribe claim covers it`,
    }),
  });
}
