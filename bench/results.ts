/** What one bench run measured, per peer and scenario; rendered to Markdown and SVG. */
import type { BenchConfig } from "./bench-config.ts";
import type { CoreSplit, Machine } from "./machine.ts";
import type { TimingSummary } from "./scenarios/timings.ts";

/** Delivery checks shared by every scenario that publishes. */
export interface DeliveryFigures {
  deliveries: number;
  /** Streams × events each should have seen. */
  expected: number;
  lost: number;
  duplicates: number;
  reordered: number;
  /** Events that were not ours or came on the wrong channel. */
  foreign: number;
  /** Streams the server cut while they should have stayed open. */
  drops: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Server CPU (all its processes) per delivery, µs. */
  serverCpuUsPerDelivery: number;
  /** The load generator's own CPU per delivery, µs: its ceiling is not the server's. */
  generatorCpuUsPerDelivery: number;
}

export interface IdleFigures {
  streams: number;
  live: number;
  openMs: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerStream: number;
  /**
   * Time to first event: from a stream's first connection attempt to the first byte of its body (the
   * snapshot, for Touchline), over every stream opened; absent from runs before it was measured.
   */
  firstEvent?: FirstEventFigures;
}

export interface SteadyFigures extends DeliveryFigures {
  streams: number;
  events: number;
  ratePerSecond: number;
  /** p99 of each round, in the order run; the other figures are the median round's (see scenarios/steady.ts). */
  roundsP99Ms: number[];
}

export interface BurstFigures extends DeliveryFigures {
  streams: number;
  events: number;
  /** From the first publish to the last delivery. */
  seconds: number;
  publishSeconds: number;
  deliveriesPerSecond: number;
  /** Share of one core the generator used during the burst; near 100% means it, not the server, set the pace. */
  generatorBusyPercent: number;
}

export interface ChannelsFigures extends DeliveryFigures {
  channels: number;
  streamsPerChannel: number;
  events: number;
  ratePerSecond: number;
  /** Measured in rounds taking turns with another peer (alternatingChannels.ts), not on its own. */
  alternated?: {
    /** The other peer's name. */
    with: string;
    rounds: number;
    /** Each round's server CPU per delivery ÷ the other peer's in the same round. */
    ratios: number[];
  };
}

export interface StormFigures {
  streams: number;
  live: number;
  failed: number;
  /** From the cut until every stream had its response head again. */
  reconnectMs: number;
  events: number;
  /** Null when the peer has no resume: what it lost while clients were away is by design. */
  lost: number | null;
  duplicates: number;
  reordered: number;
}

/** Many streams held on a freshly started server: memory per stream, and every one still delivering. */
export interface HoldFigures extends DeliveryFigures, IdleFigures {
  events: number;
}

/** A node filled past its stream cap: does it refuse the excess cleanly and stay responsive? */
export interface LimitFigures {
  cap: number;
  /** Streams asked for in all, held ones included. */
  attempted: number;
  live: number;
  /** Refused at every one of the generator's few attempts: answered 503, or a 200 stream whose event was `touchline.refused`. */
  refused: number;
  /** Of the refused, those refused in the stream (`touchline.refused`); absent from runs before that form existed. */
  refusedInStream?: number;
  /** Failed any other way: timeouts, resets, other statuses. */
  otherFailures: number;
  /** Server CPU while idle at the cap, as a share of one core: a server spinning on its accept queue shows here. */
  idleCpuPercent: number;
  /** The slowest of a few publishes made at the cap. */
  publishMsMax: number;
  /** Deliveries of those publishes to every live stream. */
  delivery: DeliveryFigures;
}

export interface PeerResult {
  name: string;
  title: string;
  resumes: boolean;
  idle?: IdleFigures;
  steady?: SteadyFigures;
  burst?: BurstFigures;
  channels?: ChannelsFigures;
  storm?: StormFigures;
  hold?: HoldFigures;
  limit?: LimitFigures;
  /** Issue 12, one Touchline node: publish throughput against raw JetStream. */
  publish?: PublishFigures;
  /** Issue 12, one Touchline node: 20,000 matches. */
  matches?: ManyMatchesFigures;
  /** Why the peer's run stopped early, if it did. */
  error?: string;
}

export interface BenchResult {
  startedAt: string;
  durationSeconds: number;
  machine: Machine;
  cores: CoreSplit;
  config: BenchConfig;
  peers: PeerResult[];
  /** Peers that were asked for but could not run, with the reason. */
  skipped: Array<{ name: string; reason: string }>;
}

/** Percentiles of the time from opening a stream to its first byte, ms (whole ms). */
export interface FirstEventFigures {
  streams: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Streams the generator opened at once (its connecting window): the load the open latency is measured under. */
  concurrency: number;
}

/** One publish load over a measured phase. */
export interface ThroughputFigures {
  /** Events acknowledged (a batch counts its items). */
  events: number;
  /** Requests made: publishes, or batches. */
  requests: number;
  errors: number;
  seconds: number;
  eventsPerSecond: number;
  /** Acknowledgement time per request (a whole batch for batches), ms. */
  ack: TimingSummary;
  /** The Touchline node's CPU per event, µs; null for the raw JetStream baseline, which has no node. */
  nodeCpuUsPerEvent: number | null;
  natsCpuUsPerEvent: number;
  /** The publisher's own CPU per event (it shares the generator core): near a full core, it set the pace. */
  publisherCpuUsPerEvent: number;
  publisherBusyPercent: number;
  /** CPU every other process on the (shared) machine used meanwhile, % of one core: high means a disturbed figure. */
  otherCpuPercent: number;
  /** NATS messages the server took in and sent out per event (/varz, every client): the NATS work one event costs. */
  natsMessagesInPerEvent: number;
  natsMessagesOutPerEvent: number;
}

export interface PublishFigures {
  /** Bytes JetStream stores per event. */
  payloadBytes: number;
  /** Matches (subjects, for raw) the events are spread over. */
  matches: number;
  rawInFlight: number;
  singleConcurrency: number;
  batchItems: number;
  batchesInFlight: number;
  /** Raw JetStream, measured before the first round and after every round: raw[i] and raw[i + 1] frame round i. */
  raw: ThroughputFigures[];
  /** Mean of every raw measurement. */
  rawPerSecond: number;
  rounds: PublishRound[];
  /** Medians over the rounds of each round's ratio to its own raw baseline. */
  singleToRaw: number;
  batchedToRaw: number;
  /** The round with the median single ratio's single load, and the one with the median batched ratio's batched load. */
  single: ThroughputFigures;
  batched: ThroughputFigures;
}

/** Single then batched publishing, between two raw JetStream measurements whose mean is the round's baseline. */
export interface PublishRound {
  rawPerSecond: number;
  single: ThroughputFigures;
  batched: ThroughputFigures;
  singleToRaw: number;
  batchedToRaw: number;
}

/** One node given one event for each of many matches, then streams on some of them and more events to all. */
export interface ManyMatchesFigures {
  matches: number;
  batchItems: number;
  /** Creating: one event to every match, in batches (seconds: until all were stored; CPU and messages: until every owner had started). */
  create: {
    events: number;
    seconds: number;
    eventsPerSecond: number;
    nodeCpuUsPerEvent: number;
    natsCpuUsPerEvent: number;
    /** NATS messages (in + out, /varz) per event, owners' start-up (leases, index) included. */
    natsMessagesPerEvent: number;
  };
  /** Matches the node owned once creation settled (touchline_owned_matches). */
  ownedMatches: number;
  /** JetStream consumers on the server (/jsz): after creation, and the most seen at any reading. */
  consumersAfterCreate: number;
  consumersMax: number;
  /** The node's resident memory: fresh, after creation with every actor idle, and the highest sampled. */
  nodeRssBeforeBytes: number;
  nodeRssIdleBytes: number;
  nodeRssPeakBytes: number;
  /** RSS growth per match once idle and settled (scenarios/matches.ts says when). */
  bytesPerIdleMatch: number;
  /** RSS growth per match 1.5 s after every match was owned: what the burst left, before the runtime gave pages back. */
  bytesPerMatchAfterBurst?: number;
  natsRssBeforeBytes: number;
  natsRssIdleBytes: number;
  /** /readyz answer times sampled all through the scenario, ms; failures are non-200s and timeouts. */
  readyz: TimingSummary;
  readyzFailures: number;
  /** CPU the machine's other processes used over the scenario, % of one core (besides node, nats-server, generators, orchestrator). */
  otherCpuPercent: number;
  /** touchline_event_loop_lag_seconds, scraped all through: the highest, ms. */
  loopLagMaxMs: number;
  loopLagSamples: number;
  /** The worst /readyz and lag readings per step of the scenario (storing, owners starting, idle, streams opening, delivering). */
  phases?: MatchesPhase[];
  /** Streams opened after creation: `streamsPerMatch` on each of `streamedMatches`. */
  streamedMatches: number;
  streamsPerMatch: number;
  openFirstEvent?: FirstEventFigures;
  /** Then `rounds` more events to every match, in batches: deliveries reach the streamed ones only. */
  rounds: number;
  events: number;
  delivery: DeliveryFigures;
  /** Server (node + nats-server) CPU over the delivering phase per event published, and the node's alone per delivery. */
  serverCpuUsPerEvent: number;
  nodeCpuUsPerDelivery: number;
}

export interface MatchesPhase {
  name: string;
  readyzMaxMs: number;
  loopLagMaxMs: number;
  /** /readyz answers timed during the step (a step shorter than a probe interval may have none). */
  probes: number;
}
