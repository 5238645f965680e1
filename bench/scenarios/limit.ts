/**
 * Limit: with the hold scenario's streams still open, a node with a stream cap is asked for more
 * streams than the cap. It must refuse the excess (not time out or reset): with 503, or as Touchline
 * does, with a 200 stream of `retry:` and one `touchline.refused` event that ends (counted apart as
 * refused in the stream); keep its CPU quiet while the refused clients come back, and still take
 * publishes and deliver them.
 */
import { cpuMicros } from "../proc-stats.ts";
import type { LimitFigures } from "../results.ts";
import { DRAIN_TIMEOUT_MS, OPEN_TIMEOUT_MS, type ScenarioContext, deliveryFigures, describeDelivery, poolTarget, serverCpuMeter } from "./context.ts";

const IDLE_SAMPLE_MS = 2_000;
const PUBLISHES_AT_CAP = 3;
const PERCENT = 100;
const MICROS_PER_MS = 1_000;

/** Expects the hold scenario's `held` streams still open on `channel`. */
export async function runLimit(context: ScenarioContext, channel: string, held: number): Promise<LimitFigures> {
  const { peer, pool, book } = context;
  const cap = peer.streamCap;
  if (cap === null) throw new Error(`${peer.name} has no stream cap to test`);
  const extra = Math.max(0, cap - held) + context.config.overCapStreams;
  const reply = await pool.open(poolTarget(peer), [{ channel, count: extra, baseline: book.lastOf(channel) }], OPEN_TIMEOUT_MS);

  const idleStart = cpuMicros(peer.pids());
  await Bun.sleep(IDLE_SAMPLE_MS);
  const idleCpuPercent = ((cpuMicros(peer.pids()) - idleStart) / (IDLE_SAMPLE_MS * MICROS_PER_MS)) * PERCENT;

  await pool.reset();
  const serverCpu = serverCpuMeter(peer);
  let publishMsMax = 0;
  for (let i = 0; i < PUBLISHES_AT_CAP; i++) {
    const started = performance.now();
    await book.publishNext(peer, channel);
    publishMsMax = Math.max(publishMsMax, performance.now() - started);
  }
  const live = held + reply.live;
  const stats = await pool.awaitFinals(book.finals([channel]), DRAIN_TIMEOUT_MS);
  const figures: LimitFigures = {
    cap,
    attempted: held + extra,
    live,
    refused: reply.refused,
    refusedInStream: reply.refusedInStream,
    otherFailures: reply.failed - reply.refused,
    idleCpuPercent,
    publishMsMax,
    delivery: deliveryFigures(stats, PUBLISHES_AT_CAP * live, serverCpu()),
  };
  context.log(
    `  limit: cap ${cap}, ${live} live of ${figures.attempted} asked, ${figures.refused} refused (${figures.refusedInStream} of them by touchline.refused, the rest 503), ` +
      `${figures.otherFailures} other failures; idle CPU at the cap ${idleCpuPercent.toFixed(1)}%, ` +
      `publish ≤ ${Math.round(publishMsMax)} ms; ${describeDelivery(figures.delivery)}`,
  );
  return figures;
}
