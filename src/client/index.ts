/**
 * Typed Touchline client for browsers, Bun and Node 18+.
 *
 *   const stream = new TouchlineStream(multiStreamUrl("http://localhost:3000", ["ars-che"]), {
 *     token, onStateChange: (c) => console.log(c.state),
 *   });
 *   stream.on("goal", (e) => console.log(e.match, e.data.player));
 *   ...
 *   stream.close();
 */
export { TouchlineStream, DEFAULT_IDLE_TIMEOUT_MS, type StreamOptions, type StateChange } from "./stream.ts";
export {
  poll,
  pollEvents,
  DEFAULT_POLL_TIMEOUT_MS,
  type PollOptions,
  type PollEventsOptions,
  type PollResult,
  type PolledEvent,
  type PolledSnapshot,
} from "./poll.ts";
export { matchStreamUrl, multiStreamUrl, pollUrl, MAX_MATCHES_PER_STREAM } from "./urls.ts";
export { Backoff, DEFAULT_INITIAL_MS, DEFAULT_MAX_MS, type BackoffOptions } from "./backoff.ts";
export { TouchlineHttpError, TouchlineProtocolError, TouchlineRefusedError } from "./errors.ts";
export { publish, publishBatch, TouchlineBatchError, type PublishEvent, type BatchEvent, type Published, type PublishOptions } from "./publish.ts";
export { mergePatch, applyStatePatch } from "../match/mergePatch.ts";
export type * from "./types.ts";
