/** The abuse limits and the limiters behind them, by the names metrics label them with. */

/** `limit` label of touchline_limited_total: which limit refused a request. */
export const LIMIT_NAMES = [
  "streams_per_address",
  "stream_rate",
  "publish_rate",
  "header_bytes",
  "body_bytes",
  "matches_per_stream",
  "json_depth",
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

/** `limiter` label of touchline_limiter_keys and touchline_limiter_evictions_total. */
export const LIMITERS = ["open_streams", "stream_rate", "publish_rate"] as const;
export type LimiterName = (typeof LIMITERS)[number];
