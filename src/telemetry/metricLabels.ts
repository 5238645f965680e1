/**
 * Label values of the node's metrics, kept with the metrics (every series of a label shows from the
 * first scrape at 0). The modules that count them import their types from here.
 */

/** The abuse limits and the limiters behind them, by the names metrics label them with. */
/** `limit` label of touchline_limited_total: which limit refused a request. */
export const LIMIT_NAMES = ["streams_per_address", "stream_rate", "publish_rate", "header_bytes", "body_bytes", "matches_per_stream", "json_depth"] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

/** `limiter` label of touchline_limiter_keys and touchline_limiter_evictions_total. */
export const LIMITERS = ["open_streams", "stream_rate", "publish_rate"] as const;
export type LimiterName = (typeof LIMITERS)[number];

/** Why the PROXY front refused a connection: the `reason` label of touchline_proxy_refused_total. */
export const PROXY_REFUSALS = ["untrusted_peer", "bad_header", "header_timeout", "backend_unreachable"] as const;
export type ProxyRefusal = (typeof PROXY_REFUSALS)[number];

/**
 * Why a client stream ended: the `reason` label of touchline_streams_closed_total (what each means is
 * said where streams are closed, stream/sseStream.ts).
 */
export const STREAM_CLOSE_REASONS = ["client", "slow", "drain", "error", "auth_expired", "replay_paged", "unavailable", "rotated", "ended"] as const;
export type StreamCloseReason = (typeof STREAM_CLOSE_REASONS)[number];

/**
 * Which way a match's ownership moved: the `direction` label of touchline_ownership_moves_total. `in`
 * when this node became its owner, `out` when it stopped being (the ring moved it, its lease was taken).
 * Owned matches change by in − out, whatever order moves happen in.
 */
export const OWNERSHIP_DIRECTIONS = ["in", "out"] as const;
export type OwnershipDirection = (typeof OWNERSHIP_DIRECTIONS)[number];

/** Where a resume was served from: the `source` label of touchline_replay_requests_total. */
export const REPLAY_SOURCES = ["memory", "jetstream", "snapshot"] as const;
export type ReplaySource = (typeof REPLAY_SOURCES)[number];
