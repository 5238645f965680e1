/** What one bench run measured, per peer and scenario; rendered to Markdown and SVG. */
import type { BenchConfig } from './bench-config.ts'
import type { CoreSplit, Machine } from './machine.ts'

/** Delivery checks shared by every scenario that publishes. */
export interface DeliveryFigures {
  deliveries: number
  /** Streams × events each should have seen. */
  expected: number
  lost: number
  duplicates: number
  reordered: number
  /** Events that were not ours or came on the wrong channel. */
  foreign: number
  /** Streams the server cut while they should have stayed open. */
  drops: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** Server CPU (all its processes) per delivery, µs. */
  serverCpuUsPerDelivery: number
  /** The load generator's own CPU per delivery, µs: its ceiling is not the server's. */
  generatorCpuUsPerDelivery: number
}

export interface IdleFigures {
  streams: number
  live: number
  openMs: number
  rssBeforeBytes: number
  rssAfterBytes: number
  bytesPerStream: number
}

export interface SteadyFigures extends DeliveryFigures {
  streams: number
  events: number
  ratePerSecond: number
  /** p99 of each round, in the order run; the other figures are the median round's (see scenarios/steady.ts). */
  roundsP99Ms: number[]
}

export interface BurstFigures extends DeliveryFigures {
  streams: number
  events: number
  /** From the first publish to the last delivery. */
  seconds: number
  publishSeconds: number
  deliveriesPerSecond: number
  /** Share of one core the generator used during the burst; near 100% means it, not the server, set the pace. */
  generatorBusyPercent: number
}

export interface ChannelsFigures extends DeliveryFigures {
  channels: number
  streamsPerChannel: number
  events: number
  ratePerSecond: number
}

export interface StormFigures {
  streams: number
  live: number
  failed: number
  /** From the cut until every stream had its response head again. */
  reconnectMs: number
  events: number
  /** Null when the peer has no resume: what it lost while clients were away is by design. */
  lost: number | null
  duplicates: number
  reordered: number
}

/** Many streams held on a freshly started server: memory per stream, and every one still delivering. */
export interface HoldFigures extends DeliveryFigures, IdleFigures {
  events: number
}

/** A node filled past its stream cap: does it refuse the excess cleanly and stay responsive? */
export interface LimitFigures {
  cap: number
  /** Streams asked for in all, held ones included. */
  attempted: number
  live: number
  /** Refused at every one of the generator's few attempts: answered 503, or a 200 stream whose event was `touchline.refused`. */
  refused: number
  /** Of the refused, those refused in the stream (`touchline.refused`); absent from runs before that form existed. */
  refusedInStream?: number
  /** Failed any other way: timeouts, resets, other statuses. */
  otherFailures: number
  /** Server CPU while idle at the cap, as a share of one core: a server spinning on its accept queue shows here. */
  idleCpuPercent: number
  /** The slowest of a few publishes made at the cap. */
  publishMsMax: number
  /** Deliveries of those publishes to every live stream. */
  delivery: DeliveryFigures
}

export interface PeerResult {
  name: string
  title: string
  resumes: boolean
  idle?: IdleFigures
  steady?: SteadyFigures
  burst?: BurstFigures
  channels?: ChannelsFigures
  storm?: StormFigures
  hold?: HoldFigures
  limit?: LimitFigures
  /** Why the peer's run stopped early, if it did. */
  error?: string
}

export interface BenchResult {
  startedAt: string
  durationSeconds: number
  machine: Machine
  cores: CoreSplit
  config: BenchConfig
  peers: PeerResult[]
  /** Peers that were asked for but could not run, with the reason. */
  skipped: Array<{ name: string; reason: string }>
}
