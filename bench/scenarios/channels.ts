/** Many channels: C channels × 20 streams, events spread over the channels in turn. */
import { STREAMS_PER_CHANNEL } from "../bench-config.ts";
import { publishPaced } from "../publisher.ts";
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
  await pool.reset();
  const events = Math.round(config.channelsRatePerSecond * config.channelsSeconds);
  const serverCpu = serverCpuMeter(peer);
  const sent = await publishPaced(peer, book, {
    channels,
    ratePerSecond: config.channelsRatePerSecond,
    maxEvents: events,
    maxMs: config.channelsSeconds * 1000 + SCHEDULE_SLACK_MS,
  });
  const stats = await pool.awaitFinals(book.finals(channels), DRAIN_TIMEOUT_MS);
  const figures: ChannelsFigures = {
    ...deliveryFigures(stats, sent * STREAMS_PER_CHANNEL, serverCpu()),
    channels: config.channels,
    streamsPerChannel: STREAMS_PER_CHANNEL,
    events: sent,
    ratePerSecond: config.channelsRatePerSecond,
  };
  context.log(`  channels: ${describeDelivery(figures)}`);
  return figures;
}
