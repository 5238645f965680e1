/**
 * Every span name and attribute key Touchline emits, in one place, so the docs, dashboards and tests
 * read the same words the code writes. Standard OpenTelemetry semantic-convention keys are used where
 * one exists (HTTP, messaging); the rest live under `touchline.`.
 *
 * One publish is one trace:
 *   POST /matches/{match}/events      (http server, the node the producer called)
 *     jetstream.store                 (producer: the append acknowledged by JetStream)
 *       match.ingest                  (consumer, on the match's owner: the event read back from JetStream)
 *         feed.publish                (producer: the event sent to the other nodes on the match's feed)
 *           match.fanout              (consumer, on every other node: one span per event per node)
 *         match.fanout                (the owner's own subscribers)
 */

/** The publish route as the http.route attribute and span name spell it (path template, not the URL). */
import type { ReplaySource as LabelledReplaySource } from "./metricLabels.ts";

export const HTTP_ROUTE_PUBLISH = "/matches/{match}/events";
/** Batch publishing: one span per batch, however many matches it touches. */
export const HTTP_ROUTE_BATCH_PUBLISH = "/events";

export const SPAN = {
  /** The span name of an HTTP server span is `{method} {route}`: see httpSpan.ts. */
  store: "jetstream.store",
  ingest: "match.ingest",
  feedPublish: "feed.publish",
  fanOut: "match.fanout",
  subscribe: "match.subscribe",
  replay: "match.replay",
  leaseAcquire: "ownership.acquire",
  leaseRelease: "ownership.release",
} as const;

export const ATTR = {
  // HTTP (semantic conventions)
  httpMethod: "http.request.method",
  httpRoute: "http.route",
  httpStatus: "http.response.status_code",
  urlPath: "url.path",
  // Messaging (semantic conventions)
  messagingSystem: "messaging.system",
  messagingDestination: "messaging.destination.name",
  messagingOperation: "messaging.operation.type",
  // Touchline
  match: "touchline.match",
  eventSeq: "touchline.event.seq",
  eventType: "touchline.event.type",
  duplicate: "touchline.event.duplicate",
  role: "touchline.role",
  epoch: "touchline.epoch",
  subscribers: "touchline.fanout.subscribers",
  resumeAfter: "touchline.subscribe.after",
  subscribeStart: "touchline.subscribe.start",
  replaySource: "touchline.replay.source",
  replayEvents: "touchline.replay.events",
  replayFrom: "touchline.replay.from",
  replayThrough: "touchline.replay.through",
  replaySubscribers: "touchline.replay.subscribers",
  leaseOutcome: "touchline.lease.outcome",
  leaseEpoch: "touchline.lease.epoch",
  leasePreviousHolder: "touchline.lease.previous_holder",
} as const;

export const MESSAGING_SYSTEM_NATS = "nats";
export const MESSAGING_OP_SEND = "send";
export const MESSAGING_OP_PROCESS = "process";

/** How a subscriber's stream started (touchline.subscribe.start). */
export type SubscribeStart = "snapshot" | "memory" | "jetstream" | "waiting";
/** Where replayed events came from (touchline.replay.source). */
/** A replay read from memory or the log (a snapshot is not a replay: no span). */
export type ReplaySource = Exclude<LabelledReplaySource, "snapshot">;
/** What a lease acquire attempt came to (touchline.lease.outcome). */
export type LeaseOutcome = "acquired" | "held" | "lost_race";
