/** Scenario sizes for a full run (`bun run bench`) and a quick one (`--quick`). */

/** Loopback addresses streams are spread over; every peer listens on 0.0.0.0. */
export const LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
/** Open files one process may hold on this machine; no single server can hold more streams. */
export const FILE_LIMIT = 20_000;
/** Descriptors a server keeps for itself (listeners, NATS, publishers, logs) under the file limit; Touchline's own default. */
export const SERVER_FILE_HEADROOM = 1_024;
export const STREAMS_PER_CHANNEL = 20;
/** The many-channels scenario: 1,000 channels × 20 streams (capped by the stream count). */
export const MAX_CHANNELS = 1_000;
/** Under every single-server peer's cap (Touchline's is the file limit minus 1,024). */
export const HOLD_STREAMS = 18_500;
export const CLUSTER_HOLD_STREAMS = 50_000;
/** Streams per load-generator process, well below the 20,000 open files one process may hold. */
export const STREAMS_PER_GENERATOR = 15_000;
export const OVER_CAP_STREAMS = 500;
/** Issue 12's many-matches scenario: one node given events for this many matches. */
export const MANY_MATCHES = 20_000;
/** Streams per streamed match in the many-matches scenario ("a few streams each on some of them"). */
export const STREAMS_PER_MATCH = 4;

/**
 * Scenario groups `--scenarios=` may pick. fanout = idle, steady, burst and storm (they share their
 * streams); hold includes the limit scenario and time to first event; publish and matches are issue
 * 12's, run on the one-node Touchline peer only.
 */
export const SCENARIO_GROUPS = ["fanout", "channels", "publish", "hold", "matches"] as const;
export type ScenarioGroup = (typeof SCENARIO_GROUPS)[number];

export interface BenchConfig {
  quick: boolean;
  /** Streams in the idle, steady, burst and storm scenarios. */
  streams: number;
  steadyRatePerSecond: number;
  steadySeconds: number;
  /** Rounds of the steady scenario; the one with the median p99 is reported. */
  steadyRounds: number;
  burstEvents: number;
  /** Many-channels: `channels` × STREAMS_PER_CHANNEL streams, `channelsRatePerSecond` spread over them. */
  channels: number;
  channelsRatePerSecond: number;
  channelsSeconds: number;
  /** The same load first runs this long unmeasured: every peer is measured warm (JIT, caches, buffers). */
  channelsWarmupSeconds: number;
  /** Touchline and nchan take turns in this many rounds of channelsSeconds / channelsRounds each (alternatingChannels.ts). */
  channelsRounds: number;
  /**
   * Publishing goes on during the reconnect storm so that resume has something to replay. Kept at
   * the steady rate: 20 ev/s to 10,000 streams (200,000 deliveries/s) outran the one-core
   * generator, which then reconnected slowly and resumed past nchan's replay buffer.
   */
  stormRatePerSecond: number;
  /** Publishing goes on this long after the last stream is back, so every stream must catch up live. */
  stormTailMs: number;
  /** Wait after opening streams before reading memory, so lazy allocations have happened. */
  settleMs: number;
  /** Hold: streams a single server is filled with (near its file limit), on a fresh start; 0 skips. */
  holdStreams: number;
  /** Hold: streams a cluster is filled with, dealt over its nodes; 0 skips. */
  clusterHoldStreams: number;
  /** Hold: events published to the held streams, to prove they all still work. */
  holdEvents: number;
  holdRatePerSecond: number;
  /** More streams than this are spread over several generator processes (all on the generator cores). */
  streamsPerGenerator: number;
  /** Touchline's MAX_CONNECTIONS per node; by default its own, the file limit minus 1,024. */
  touchlineStreamCap: number;
  /** Limit: streams asked for past a capped node's cap. */
  overCapStreams: number;
  /** Which scenario groups run (all by default). */
  scenarios: ScenarioGroup[];
  /** Publish: seconds each load (raw JetStream twice, single, batched) is measured, after a fifth of that unmeasured. */
  publishSeconds: number;
  /** Publish: rounds of single then batched, each framed by raw JetStream measurements; the median round by ratio is reported. */
  publishRounds: number;
  /** Publish: before round 1, single and then batched publishing run this long each, unmeasured (see publish.ts). */
  publishWarmupSeconds: number;
  /** Many matches: matches given one event each; 0 skips the scenario. */
  manyMatches: number;
  /** Many matches: matches that get STREAMS_PER_MATCH streams each (fewer if the node's cap would not allow them). */
  manyMatchesStreamed: number;
  /** Many matches: rounds of one more event to every match once the streams are open. */
  manyMatchesRounds: number;
  /** Many matches: items per `POST /events` batch. */
  manyMatchesBatchItems: number;
}

export function benchConfig(options: {
  quick: boolean;
  streams?: number;
  holdStreams?: number;
  clusterHoldStreams?: number;
  scenarios?: ScenarioGroup[];
  manyMatches?: number;
}): BenchConfig {
  const streams = options.streams ?? (options.quick ? 1_000 : 10_000);
  // 1,000 × 20 = 20,000 streams would exceed one server's file limit, so the channel count
  // follows the stream count: the scenario uses as many streams as the fan-out ones.
  const channels = Math.max(1, Math.min(MAX_CHANNELS, Math.floor(streams / STREAMS_PER_CHANNEL)));
  return {
    quick: options.quick,
    streams,
    steadyRatePerSecond: 5,
    // 75 events to each of 10,000 streams a round, 750,000 latencies: plenty for a p99. 20 s rounds put the
    // full run at 818-880 s (2026-12-05/06), too near its 15 minutes; 15 s take 75 s off it.
    steadySeconds: options.quick ? 3 : 15,
    steadyRounds: options.quick ? 1 : 3,
    // 300 × 10,000 streams is 3,000,000 deliveries, plenty for a rate. 1,000 took nchan 82 s and the Node
    // pattern 107 s of a 15-minute run; at 500, on a slow day (2026-12-05), the Node pattern hit its 120 s
    // bound and the full run took 17.5 minutes.
    burstEvents: options.quick ? 200 : 300,
    channels,
    channelsRatePerSecond: 500,
    channelsSeconds: options.quick ? 2 : 20,
    channelsWarmupSeconds: options.quick ? 1 : 4,
    // Rounds of 5 s: a slow spell of this machine lasts seconds to minutes, so both peers meet it in turn.
    channelsRounds: options.quick ? 1 : 4,
    stormRatePerSecond: 5,
    stormTailMs: options.quick ? 500 : 1_000,
    settleMs: options.quick ? 500 : 3_000,
    // The figures: one node near its 20,000-file limit, and 50,000 streams on the cluster.
    // A quick run skips them: opening tens of thousands of streams does not fit in a minute.
    holdStreams: options.holdStreams ?? (options.quick ? 0 : HOLD_STREAMS),
    clusterHoldStreams: options.clusterHoldStreams ?? (options.quick ? 0 : CLUSTER_HOLD_STREAMS),
    holdEvents: 10,
    holdRatePerSecond: 2,
    streamsPerGenerator: STREAMS_PER_GENERATOR,
    touchlineStreamCap: FILE_LIMIT - SERVER_FILE_HEADROOM,
    overCapStreams: OVER_CAP_STREAMS,
    scenarios: options.scenarios ?? [...SCENARIO_GROUPS],
    publishSeconds: options.quick ? 1.5 : 4,
    // Three rounds, the median reported: the raw baseline moved 2× between runs on this shared machine.
    publishRounds: options.quick ? 1 : 3,
    publishWarmupSeconds: options.quick ? 0.5 : 3,
    // A quick run keeps a tenth of the matches: the figures per match are the same shape, in seconds.
    manyMatches: options.manyMatches ?? (options.quick ? MANY_MATCHES / 10 : MANY_MATCHES),
    manyMatchesStreamed: options.quick ? 50 : 2_500,
    manyMatchesRounds: options.quick ? 1 : 2,
    manyMatchesBatchItems: 500,
  };
}
