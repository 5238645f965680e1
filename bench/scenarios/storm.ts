/**
 * Reconnect storm: every stream cut at once and reopened straight away with its last event id,
 * while publishing goes on. Measures the time until all are live again and, for peers that
 * resume, whether anything was lost or repeated across the cut.
 */
import { publishPaced } from "../publisher.ts";
import type { StormFigures } from "../results.ts";
import { DRAIN_TIMEOUT_MS, type ScenarioContext } from "./context.ts";

const STORM_TIMEOUT_MS = 120_000;
/** Publishing runs a little before the cut, so streams are cut mid-flow. */
const BEFORE_CUT_MS = 300;

export async function runStorm(context: ScenarioContext, channel: string): Promise<StormFigures> {
  const { peer, pool, book, config } = context;
  await pool.reset();
  let stormOver = false;
  let stoppedAt = Number.POSITIVE_INFINITY;
  const publishing = publishPaced(peer, book, {
    channels: [channel],
    ratePerSecond: config.stormRatePerSecond,
    maxEvents: Math.ceil((config.stormRatePerSecond * (STORM_TIMEOUT_MS + BEFORE_CUT_MS + config.stormTailMs)) / 1000),
    maxMs: STORM_TIMEOUT_MS + BEFORE_CUT_MS + config.stormTailMs,
    stop: () => stormOver && performance.now() >= stoppedAt,
  });
  await Bun.sleep(BEFORE_CUT_MS);
  let storm;
  try {
    storm = await pool.storm(STORM_TIMEOUT_MS);
  } finally {
    stormOver = true;
    stoppedAt = performance.now() + config.stormTailMs;
  }
  const events = await publishing;
  const stats = await pool.awaitFinals(book.finals([channel]), DRAIN_TIMEOUT_MS);
  const figures: StormFigures = {
    streams: config.streams,
    live: storm.live,
    failed: storm.failed,
    reconnectMs: storm.ms,
    events,
    lost: peer.resumes ? stats.lost : null,
    duplicates: stats.duplicates,
    reordered: stats.reordered,
  };
  context.log(
    `  storm: ${storm.live}/${config.streams} back in ${Math.round(storm.ms)} ms, ${events} events published, ` +
      `lost ${figures.lost ?? "n/a (no resume)"}, dup ${stats.duplicates}, reordered ${stats.reordered}`,
  );
  return figures;
}
