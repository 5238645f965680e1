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
export interface HoldFigures extends DeliveryFigures {
  streams: number
  live: number
  openMs: number
  rssBeforeBytes: number
  rssAfterBytes: number
  bytesPerStream: number
  events: number
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
