/** Idle memory: server RSS before and after opening N streams that carry nothing. */
import { residentBytes } from "../proc-stats.ts";
import type { IdleFigures } from "../results.ts";
import { type ScenarioContext, describeFirstEvent, firstEventFigures, openStreams } from "./context.ts";

export async function runIdle(context: ScenarioContext, channel: string): Promise<IdleFigures> {
  const { peer, config } = context;
  await Bun.sleep(config.settleMs);
  const before = residentBytes(peer.pids());
  const opened = await openStreams(context, [{ channel, count: config.streams }]);
  await Bun.sleep(config.settleMs);
  const after = residentBytes(peer.pids());
  const figures: IdleFigures = {
    streams: config.streams,
    live: config.streams,
    openMs: opened.ms,
    rssBeforeBytes: before,
    rssAfterBytes: after,
    bytesPerStream: (after - before) / config.streams,
    firstEvent: firstEventFigures(opened, context.pool.pids.length),
  };
  context.log(
    `  idle: ${(figures.bytesPerStream / 1024).toFixed(2)} KiB per stream (RSS ${mib(before)} → ${mib(after)} MiB); ${describeFirstEvent(figures.firstEvent!)}`,
  );
  return figures;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
