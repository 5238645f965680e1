/** Burst: events published back to back to N streams: deliveries per second and CPU per delivery. */
import { publishBurst } from "../publisher.ts";
import type { BurstFigures } from "../results.ts";
import { DRAIN_TIMEOUT_MS, type ScenarioContext, deliveryFigures, describeDelivery, serverCpuMeter } from "./context.ts";

/** Bounds on a peer that accepts publishes very slowly or delivers very slowly. */
const MAX_PUBLISH_MS = 120_000;
const SLOWEST_DELIVERIES_PER_SECOND = 20_000;
const PERCENT = 100;

export async function runBurst(context: ScenarioContext, channel: string): Promise<BurstFigures> {
  const { peer, pool, book, config } = context;
  await pool.reset();
  const serverCpu = serverCpuMeter(peer);
  const startedAt = Date.now();
  const publishMs = await publishBurst(peer, book, channel, config.burstEvents, MAX_PUBLISH_MS);
  const expected = config.burstEvents * config.streams;
  const stats = await pool.awaitFinals(book.finals([channel]), DRAIN_TIMEOUT_MS + (expected / SLOWEST_DELIVERIES_PER_SECOND) * 1000);
  const cpuUs = serverCpu();
  const seconds = Math.max(stats.lastDeliveryAt - startedAt, 1) / 1000;
  const figures: BurstFigures = {
    ...deliveryFigures(stats, expected, cpuUs),
    streams: config.streams,
    events: config.burstEvents,
    seconds,
    publishSeconds: publishMs / 1000,
    deliveriesPerSecond: stats.deliveries / seconds,
    generatorBusyPercent: (stats.cpuUs / (seconds * 1_000_000)) * PERCENT,
  };
  context.log(
    `  burst: ${Math.round(figures.deliveriesPerSecond)} deliveries/s over ${seconds.toFixed(1)} s ` +
      `(generator busy ${figures.generatorBusyPercent.toFixed(0)}%); ${describeDelivery(figures)}`,
  );
  return figures;
}
