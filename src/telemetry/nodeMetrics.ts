/**
 * The catalogue of metrics a Touchline node exposes on /metrics.
 *
 * Labels with a fixed set of values are resolved here once, so callers on hot paths hold a
 * ready child (`m.streamsClosed.slow.inc()`) and every series shows from the first scrape at 0,
 * which keeps `rate()` and absence alerts honest.
 *
 * Besides the families below: the standard process metrics (`process_resident_memory_bytes`,
 * `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`, `process_start_time_seconds`,
 * read at scrape time, processMetrics.ts) and `touchline_build_info{version}` (buildInfo.ts).
 * cluster/prometheus/alerts.yml and cluster/grafana/touchline.json use these names.
 */
import type { Counter, CounterChild, Gauge, GaugeChild, Histogram, MetricsRegistry } from "./metrics";
import {
  LIMITERS,
  LIMIT_NAMES,
  OWNERSHIP_DIRECTIONS,
  PROXY_REFUSALS,
  REPLAY_SOURCES,
  STREAM_CLOSE_REASONS,
  type LimiterName,
  type LimitName,
  type OwnershipDirection,
  type ProxyRefusal,
  type ReplaySource,
  type StreamCloseReason,
} from "./metricLabels";

export {
  STREAM_CLOSE_REASONS,
  REPLAY_SOURCES,
  type StreamCloseReason,
  type ReplaySource,
  type OwnershipDirection,
} from "./metricLabels";
import { registerBuildInfo } from "./buildInfo";
import { registerProcessMetrics, type ProcessReaders } from "./processMetrics";

export { startEventLoopLagMonitor } from "./eventLoopLag";

export const PUBLISH_RESULTS = ["stored", "duplicate"] as const;
export type PublishResult = (typeof PUBLISH_RESULTS)[number];

export const REJECT_REASONS = ["rate_limited", "capacity", "too_large", "bad_request", "unauthorized"] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** Publish time to bytes handed to the socket: 1 ms (same host, idle) up to 10 s (a struggling node). */
export const DELIVERY_LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface NodeMetrics {
  /** touchline_streams_open: client streams open now (a multiplexed stream counts once). */
  streamsOpen: Gauge;
  /** touchline_streams_max: MAX_CONNECTIONS, so alerts compare against the node's own cap */
  streamsMax: Gauge;
  /** touchline_streams_opened_total */
  streamsOpened: Counter;
  /** touchline_streams_closed_total{reason} */
  streamsClosed: Record<StreamCloseReason, CounterChild>;
  /** touchline_slow_clients_cut_total: streams cut off for exceeding their buffer cap. */
  slowClientsCut: Counter;
  /** touchline_events_published_total{result} */
  eventsPublished: Record<PublishResult, CounterChild>;
  /** touchline_events_delivered_total: add the number of streams reached, once per fan-out. */
  eventsDelivered: Counter;
  /**
   * touchline_delivery_latency_seconds: event publish ts to queued on a client stream, one observation
   * per delivery; the socket write follows in the next flush pass (at most MAX_COALESCE_MS later).
   */
  deliveryLatency: Histogram;
  /** touchline_replay_requests_total{source} */
  replayRequests: Record<ReplaySource, CounterChild>;
  /** touchline_replayed_events_total */
  replayedEvents: Counter;
  /** touchline_owned_matches */
  ownedMatches: Gauge;
  /** touchline_upstream_feeds: node-to-node feeds this node holds open to match owners. */
  upstreamFeeds: Gauge;
  /** touchline_cluster_nodes_with_other_settings: live nodes announcing settings this node does not share. */
  nodesWithOtherSettings: Gauge;
  /** touchline_ownership_moves_total{direction} */
  ownershipMoves: Record<OwnershipDirection, CounterChild>;
  /** touchline_nats_connected: 1 when connected, 0 otherwise. */
  natsConnected: Gauge;
  /** touchline_event_loop_lag_seconds: fed by startEventLoopLagMonitor. */
  eventLoopLag: Gauge;
  /** touchline_rejected_total{reason} */
  rejected: Record<RejectReason, CounterChild>;
  /** touchline_limited_total{limit}: refusals by the abuse limit that made them (src/limits). */
  limited: Record<LimitName, CounterChild>;
  /** touchline_limiter_keys{limiter}: client addresses or tokens each limiter tracks now. */
  limiterKeys: Record<LimiterName, GaugeChild>;
  /** touchline_limiter_evictions_total{limiter}: keys dropped early because the limiter was full. */
  limiterEvictions: Record<LimiterName, CounterChild>;
  /** touchline_proxy_refused_total{reason}: connections the PROXY protocol front closed (PROXY_PROTOCOL). */
  proxyRefused: Record<ProxyRefusal, CounterChild>;
}

function gaugeChildrenFor<K extends string>(gauge: Gauge, label: string, values: readonly K[]): Record<K, GaugeChild> {
  const children = {} as Record<K, GaugeChild>;
  for (const value of values) children[value] = gauge.labels({ [label]: value });
  return children;
}

function childrenFor<K extends string>(counter: Counter, label: string, values: readonly K[]): Record<K, CounterChild> {
  const children = {} as Record<K, CounterChild>;
  for (const value of values) children[value] = counter.labels({ [label]: value });
  return children;
}

export function createNodeMetrics(registry: MetricsRegistry, processReaders?: ProcessReaders): NodeMetrics {
  const metrics: NodeMetrics = {
    streamsOpen: registry.gauge("touchline_streams_open", "Client SSE streams open on this node."),
    streamsMax: registry.gauge("touchline_streams_max", "MAX_CONNECTIONS: client SSE streams this node may hold."),
    streamsOpened: registry.counter("touchline_streams_opened_total", "Client SSE streams opened."),
    streamsClosed: childrenFor(
      registry.counter("touchline_streams_closed_total", "Client SSE streams closed, by reason.", ["reason"]),
      "reason",
      STREAM_CLOSE_REASONS,
    ),
    slowClientsCut: registry.counter("touchline_slow_clients_cut_total", "Streams cut off because their unsent buffer passed the cap."),
    eventsPublished: childrenFor(
      registry.counter("touchline_events_published_total", "Events published through this node, by result.", ["result"]),
      "result",
      PUBLISH_RESULTS,
    ),
    eventsDelivered: registry.counter("touchline_events_delivered_total", "Event deliveries to client streams (one per event per stream)."),
    deliveryLatency: registry.histogram(
      "touchline_delivery_latency_seconds",
      "Time from an event being published to it being queued for a client socket, one observation per delivery.",
      DELIVERY_LATENCY_BUCKETS_SECONDS,
    ),
    replayRequests: childrenFor(
      registry.counter("touchline_replay_requests_total", "Resume requests served, by where the history came from.", ["source"]),
      "source",
      REPLAY_SOURCES,
    ),
    replayedEvents: registry.counter("touchline_replayed_events_total", "Events sent to clients as replay on resume."),
    ownedMatches: registry.gauge("touchline_owned_matches", "Matches this node owns now."),
    upstreamFeeds: registry.gauge("touchline_upstream_feeds", "Feeds this node holds from the owners of matches it proxies."),
    nodesWithOtherSettings: registry.gauge(
      "touchline_cluster_nodes_with_other_settings",
      "Live nodes of the cluster announcing settings (RETENTION, MAX_STATE_BYTES, tokens...) this node does not share.",
    ),
    ownershipMoves: childrenFor(
      registry.counter("touchline_ownership_moves_total", "Matches whose ownership moved to this node (in) or away from it (out).", ["direction"]),
      "direction",
      OWNERSHIP_DIRECTIONS,
    ),
    natsConnected: registry.gauge("touchline_nats_connected", "1 while connected to NATS, 0 otherwise."),
    eventLoopLag: registry.gauge("touchline_event_loop_lag_seconds", "How late the latest event-loop probe timers fired: the worst of the last 15 s."),
    rejected: childrenFor(registry.counter("touchline_rejected_total", "Requests refused, by reason.", ["reason"]), "reason", REJECT_REASONS),
    limited: childrenFor(registry.counter("touchline_limited_total", "Requests refused by an abuse limit, by limit.", ["limit"]), "limit", LIMIT_NAMES),
    limiterKeys: gaugeChildrenFor(
      registry.gauge("touchline_limiter_keys", "Client addresses or tokens each abuse limiter tracks now.", ["limiter"]),
      "limiter",
      LIMITERS,
    ),
    limiterEvictions: childrenFor(
      registry.counter("touchline_limiter_evictions_total", "Keys a rate limiter dropped before they went idle because it tracked LIMITER_MAX_KEYS.", [
        "limiter",
      ]),
      "limiter",
      LIMITERS,
    ),
    proxyRefused: childrenFor(
      registry.counter(
        "touchline_proxy_refused_total",
        "Connections closed before any request because the PROXY protocol header was missing, broken, late or from an untrusted peer.",
        ["reason"],
      ),
      "reason",
      PROXY_REFUSALS,
    ),
  };
  registerBuildInfo(registry);
  registerProcessMetrics(registry, processReaders);
  return metrics;
}
