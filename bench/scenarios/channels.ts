/**
 * Many channels: C channels × 20 streams, events spread over the channels in turn. The same load runs
 * unmeasured first (channelsWarmupSeconds), so each peer is measured in its steady state: a JIT-compiled
 * server spends its first seconds compiling, which nchan, compiled ahead, never pays (Touchline's node,
 * started cold for this scenario alone, compiled for 1.8 s of CPU, its streams' opening included, against
 * about 10 s of server CPU measured; BUN_JSC_reportDFGCompileTimes and ...FTL... on 2026-12-05). The
 * publish scenario warms each phase the same way. What the warm-up loses counts: its loss is added in.
 */
import { STREAMS_PER_CHANNEL } from "../bench-config.ts";
import { type PacedPlan, publishPaced } from "../publisher.ts";
import type { ChannelsFigures } from "../results.ts";
import { DRAIN_TIMEOUT_MS, type ScenarioContext, deliveryFigures, describeDelivery, openAll, serverCpuMeter } from "./context.ts";

const SCHEDULE_SLACK_MS = 10_000;

export async function runChannels(context: ScenarioContext, channelPrefix: string): Promise<ChannelsFigures> {
  const { peer, pool, book, config } = context;
  const channels = Array.from({ length: config.channels }, (_, i) => `${channelPrefix}${i}`);
  await openAll(
    context,
    channels.map((channel) => ({ channel, count: STREAMS_PER_CHANNEL })),
  );
  await Bun.sleep(config.settleMs);
  await publishPaced(peer, book, paced(channels, config.channelsRatePerSecond, config.channelsWarmupSeconds));
  const warm = await pool.awaitFinals(book.finals(channels), DRAIN_TIMEOUT_MS);
  await pool.reset();
  const serverCpu = serverCpuMeter(peer);
  const sent = await publishPaced(peer, book, paced(channels, config.channelsRatePerSecond, config.channelsSeconds));
  const stats = await pool.awaitFinals(book.finals(channels), DRAIN_TIMEOUT_MS);
  const measured = deliveryFigures(stats, sent * STREAMS_PER_CHANNEL, serverCpu());
  const figures: ChannelsFigures = {
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
  context.log(`  channels: ${describeDelivery(figures)}`);
  return figures;
}

function paced(channels: string[], ratePerSecond: number, seconds: number): PacedPlan {
  return { channels, ratePerSecond, maxEvents: Math.round(ratePerSecond * seconds), maxMs: seconds * 1000 + SCHEDULE_SLACK_MS };
}
