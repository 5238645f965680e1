/**
 * Many channels: C channels × 20 streams, events spread over the channels in turn. The same load runs
 * unmeasured first (channelsWarmupSeconds), so each peer is measured in its steady state: a JIT-compiled
 * server spends its first seconds compiling, which nchan, compiled ahead, never pays (Touchline's node,
 * started cold for this scenario alone, compiled for 1.8 s of CPU, its streams' opening included, against
 * about 10 s of server CPU measured; BUN_JSC_reportDFGCompileTimes and ...FTL... on 2026-12-05). The
 * publish scenario warms each phase the same way. What the warm-up loses counts: its loss is added in.
 * Touchline against nchan is measured in alternating rounds instead (alternatingChannels.ts).
 */
import { STREAMS_PER_CHANNEL } from "../bench-config.ts";
import type { MergedStats } from "../loadgen/generator-pool.ts";
import { type PacedPlan, publishPaced } from "../publisher.ts";
import type { ChannelsFigures, DeliveryFigures } from "../results.ts";
import { DRAIN_TIMEOUT_MS, type ScenarioContext, deliveryFigures, describeDelivery, openAll, serverCpuMeter } from "./context.ts";

const SCHEDULE_SLACK_MS = 10_000;

export async function runChannels(context: ScenarioContext, channelPrefix: string): Promise<ChannelsFigures> {
  const { peer, pool, book, config } = context;
  const channels = await openChannels(context, channelPrefix);
  await Bun.sleep(config.settleMs);
  const warm = await warmChannels(context, channels);
  const serverCpu = serverCpuMeter(peer);
  const sent = await publishPaced(peer, book, channelsLoad(context, channels, config.channelsSeconds));
  const stats = await pool.awaitFinals(book.finals(channels), DRAIN_TIMEOUT_MS);
  const figures = channelsFigures(context, deliveryFigures(stats, sent * STREAMS_PER_CHANNEL, serverCpu()), warm, sent);
  context.log(`  channels: ${describeDelivery(figures)}`);
  return figures;
}

/** Opens the scenario's streams (config.channels × 20); returns the channels' names. */
export async function openChannels(context: ScenarioContext, channelPrefix: string): Promise<string[]> {
  const channels = Array.from({ length: context.config.channels }, (_, i) => `${channelPrefix}${i}`);
  await openAll(
    context,
    channels.map((channel) => ({ channel, count: STREAMS_PER_CHANNEL })),
  );
  return channels;
}

/** Runs the load unmeasured for channelsWarmupSeconds and starts the generators' counts afresh; returns the warm-up's delivery. */
export async function warmChannels(context: ScenarioContext, channels: string[]): Promise<MergedStats> {
  const { peer, pool, book, config } = context;
  await publishPaced(peer, book, channelsLoad(context, channels, config.channelsWarmupSeconds));
  const warm = await pool.awaitFinals(book.finals(channels), DRAIN_TIMEOUT_MS);
  await pool.reset();
  return warm;
}

/** The scenario's load for `seconds`: channelsRatePerSecond spread over the channels in turn. */
export function channelsLoad(context: ScenarioContext, channels: string[], seconds: number): PacedPlan {
  const ratePerSecond = context.config.channelsRatePerSecond;
  return { channels, ratePerSecond, maxEvents: Math.round(ratePerSecond * seconds), maxMs: seconds * 1000 + SCHEDULE_SLACK_MS };
}

/** The measured delivery of `sent` events, with what the warm-up lost added in. */
export function channelsFigures(context: ScenarioContext, measured: DeliveryFigures, warm: MergedStats, sent: number): ChannelsFigures {
  const { config } = context;
  return {
    ...measured,
    lost: measured.lost + warm.lost,
    duplicates: measured.duplicates + warm.duplicates,
    reordered: measured.reordered + warm.reordered,
    foreign: measured.foreign + warm.foreign,
    drops: measured.drops + warm.drops,
    channels: config.channels,
    streamsPerChannel: STREAMS_PER_CHANNEL,
    events: sent,
    ratePerSecond: config.channelsRatePerSecond,
  };
}
