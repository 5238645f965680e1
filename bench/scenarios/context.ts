/** What every scenario works with: the peer under test, the generators and the publish book. */
import type { BenchConfig } from "../bench-config.ts";
import { LOOPBACK_HOSTS } from "../bench-config.ts";
import type { GeneratorPool, MergedStats, PoolTarget } from "../loadgen/generator-pool.ts";
import { LatencyHistogram } from "../loadgen/latency-histogram.ts";
import type { OpenReply } from "../loadgen/protocol.ts";
import { MAX_CONNECTING } from "../loadgen/subscriber-fleet.ts";
import type { Peer } from "../peers/peer.ts";
import { cpuMicros } from "../proc-stats.ts";
import type { SequenceBook } from "../publisher.ts";
import type { DeliveryFigures, FirstEventFigures } from "../results.ts";

export interface ScenarioContext {
  peer: Peer;
  pool: GeneratorPool;
  book: SequenceBook;
  config: BenchConfig;
  log(line: string): void;
}

/** Opening 10,000 streams takes a few seconds; this bounds a server that stops accepting. */
export const OPEN_TIMEOUT_MS = 120_000;
/** How long deliveries may trail the last publish before the missing ones count as lost. */
export const DRAIN_TIMEOUT_MS = 15_000;

export function poolTarget(peer: Peer): PoolTarget {
  return { hosts: LOOPBACK_HOSTS, ...peer.subscribeTarget(), resume: peer.resumes };
}

/** Opens streams and fails the scenario unless every one of them is live; returns how long it took, ms. */
export async function openAll(context: ScenarioContext, groups: Array<{ channel: string; count: number }>): Promise<number> {
  return (await openStreams(context, groups)).ms;
}

/** openAll with the generators' whole answer (time to first event included). */
export async function openStreams(context: ScenarioContext, groups: Array<{ channel: string; count: number }>): Promise<OpenReply> {
  const total = groups.reduce((sum, g) => sum + g.count, 0);
  const reply = await context.pool.open(
    poolTarget(context.peer),
    groups.map((g) => ({ ...g, baseline: context.book.lastOf(g.channel) })),
    OPEN_TIMEOUT_MS,
  );
  context.log(`  opened ${reply.live}/${total} streams in ${(reply.ms / 1000).toFixed(1)} s`);
  if (reply.live < total) throw new Error(`only ${reply.live} of ${total} streams opened (${reply.failed} failed)`);
  return reply;
}

/** Time-to-first-event percentiles of an open; the generators open at most MAX_CONNECTING streams at once each. */
export function firstEventFigures(reply: OpenReply, generators: number): FirstEventFigures {
  const histogram = new LatencyHistogram();
  histogram.merge(reply.firstByte);
  return {
    streams: histogram.count,
    p50Ms: histogram.percentile(0.5),
    p95Ms: histogram.percentile(0.95),
    p99Ms: histogram.percentile(0.99),
    maxMs: reply.firstByte.max,
    concurrency: Math.min(histogram.count, generators * MAX_CONNECTING),
  };
}

export function describeFirstEvent(f: FirstEventFigures): string {
  return `time to first event p50 ${f.p50Ms} p95 ${f.p95Ms} p99 ${f.p99Ms} max ${f.maxMs} ms (${f.streams} streams, ≤ ${f.concurrency} opening at once)`;
}

/** Server CPU counter over a scenario. */
export function serverCpuMeter(peer: Peer): () => number {
  const start = cpuMicros(peer.pids());
  return () => cpuMicros(peer.pids()) - start;
}

export function deliveryFigures(stats: MergedStats, expected: number, serverCpuUs: number): DeliveryFigures {
  const summary = stats.latency.summary();
  const perDelivery = (us: number): number => (stats.deliveries === 0 ? Number.NaN : us / stats.deliveries);
  return {
    deliveries: stats.deliveries,
    expected,
    lost: stats.lost,
    duplicates: stats.duplicates,
    reordered: stats.reordered,
    foreign: stats.foreign,
    drops: stats.drops,
    p50Ms: summary.p50,
    p99Ms: summary.p99,
    maxMs: summary.max,
    serverCpuUsPerDelivery: perDelivery(serverCpuUs),
    generatorCpuUsPerDelivery: perDelivery(stats.cpuUs),
  };
}

export function describeDelivery(f: DeliveryFigures): string {
  return (
    `${f.deliveries}/${f.expected} delivered, lost ${f.lost}, dup ${f.duplicates}, reordered ${f.reordered}, ` +
    `drops ${f.drops}; p50 ${f.p50Ms} ms p99 ${f.p99Ms} ms max ${f.maxMs} ms; ` +
    `server ${f.serverCpuUsPerDelivery.toFixed(2)} µs/del, generator ${f.generatorCpuUsPerDelivery.toFixed(2)} µs/del`
  );
}
