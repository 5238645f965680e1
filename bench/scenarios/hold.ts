/**
 * Hold: a freshly started server filled with as many streams as it may hold (one process near
 * its file limit, or 50,000 over a cluster), memory per stream measured, then a few events sent
 * to all of them to prove every stream still works. Delivery to that many streams is paced by
 * the single-core load generator, so its latencies say little; loss is the point. Time to first
 * event (the seed's k6 test asked p95 < 3 s at 50,000 streams) is measured on the opening: from each
 * stream's first connection attempt to the first byte of its body, Touchline's snapshot.
 */
import { publishPaced } from "../publisher.ts";
import { residentBytes } from "../proc-stats.ts";
import type { HoldFigures } from "../results.ts";
import {
  DRAIN_TIMEOUT_MS,
  type ScenarioContext,
  deliveryFigures,
  describeDelivery,
  describeFirstEvent,
  firstEventFigures,
  openStreams,
  serverCpuMeter,
} from "./context.ts";

const SCHEDULE_SLACK_MS = 10_000;
/** Extra drain time per stream: one event to 50,000 streams takes the generator about half a second. */
const DRAIN_MS_PER_STREAM = 0.05;

export function holdStreamsFor(context: ScenarioContext): number {
  return context.peer.nodes > 1 ? context.config.clusterHoldStreams : context.config.holdStreams;
}

/** Expects a peer started afresh and warmed up, with no streams open. */
export async function runHold(context: ScenarioContext, channel: string): Promise<HoldFigures> {
  const { peer, pool, book, config } = context;
  const streams = holdStreamsFor(context);
  await Bun.sleep(config.settleMs);
  const before = residentBytes(peer.pids());
  const opened = await openStreams(context, [{ channel, count: streams }]);
  const firstEvent = firstEventFigures(opened, pool.pids.length);
  await Bun.sleep(config.settleMs);
  const after = residentBytes(peer.pids());
  await pool.reset();
  const serverCpu = serverCpuMeter(peer);
  const sent = await publishPaced(peer, book, {
    channels: [channel],
    ratePerSecond: config.holdRatePerSecond,
    maxEvents: config.holdEvents,
    maxMs: (config.holdEvents / config.holdRatePerSecond) * 1000 + SCHEDULE_SLACK_MS,
  });
  const stats = await pool.awaitFinals(book.finals([channel]), DRAIN_TIMEOUT_MS + streams * DRAIN_MS_PER_STREAM);
  const figures: HoldFigures = {
    ...deliveryFigures(stats, sent * streams, serverCpu()),
    streams,
    live: streams,
    openMs: opened.ms,
    rssBeforeBytes: before,
    rssAfterBytes: after,
    bytesPerStream: (after - before) / streams,
    events: sent,
    firstEvent,
  };
  context.log(
    `  hold: ${streams} streams, ${(figures.bytesPerStream / 1024).toFixed(2)} KiB per stream; ${describeFirstEvent(firstEvent)}; ${describeDelivery(figures)}`,
  );
  return figures;
}
