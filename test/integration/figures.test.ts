/**
 * Figures for the closing note, printed rather than asserted (this machine is shared, so no
 * timing thresholds): publish-to-delivery latency with 1,000 subscribers on one node (median and p99,
 * from each event's `ts` to its arrival here), and node RSS per open idle stream.
 *
 *   node_modules/.bin/bun test test/integration/figures.test.ts
 */
import { expect, test } from "bun:test";
import { waitFor } from "../helpers/cluster.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { dataOf, openSse, type SseConnection } from "../helpers/sse.ts";
import { parsePrometheus } from "../helpers/promParse.ts";
import { metricValue, publishOk, rssBytes, uniqueMatch, untilLatest } from "./touchlineApi.ts";

const IDLE_STREAMS = 2000;
const IDLE_MATCHES = 20;
const SUBSCRIBERS = 1000;
const LATENCY_EVENTS = 200;
/** One event every this many ms: a steady match feed, not a flood. */
const PUBLISH_EVERY_MS = 20;
const OPEN_BATCH = 100;
const SETTLE_MS = 2000;

const { node } = useNode({ env: { MAX_CONNECTIONS: "5000" } });

async function openMany(count: number, urlOf: (i: number) => string): Promise<SseConnection[]> {
  const out: SseConnection[] = [];
  for (let i = 0; i < count; i += OPEN_BATCH) {
    const batch = await Promise.all(Array.from({ length: Math.min(OPEN_BATCH, count - i) }, (_, k) => openSse(urlOf(i + k))));
    out.push(...batch);
  }
  await Promise.all(out.map((s) => s.untilEvents(1, 30_000)));
  return out;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Upper bound of the histogram bucket holding quantile q (the node's own view: ts to bytes handed to the socket). */
function histogramQuantile(text: string, name: string, q: number): number {
  const family = parsePrometheus(text).get(name);
  const buckets = (family?.samples ?? []).filter((s) => s.name === `${name}_bucket`).map((s) => ({ le: Number(s.labels.le), count: s.value }));
  const total = buckets.at(-1)?.count ?? 0;
  return buckets.find((b) => b.count >= q * total)?.le ?? NaN;
}

test(`node RSS per idle stream (${IDLE_STREAMS} streams)`, async () => {
  const matches = Array.from({ length: IDLE_MATCHES }, () => uniqueMatch("idle"));
  for (const m of matches) await publishOk(node.url, m, { type: "kickoff", state: { m } });
  // Warm the node up (code paths, actors) with a few streams, then measure against that.
  const warm = await openMany(20, (i) => `${node.url}/matches/${matches[i % IDLE_MATCHES]}/events`);
  await Promise.all(warm.map((s) => s.close()));
  await Bun.sleep(SETTLE_MS);
  const before = rssBytes(node.proc.pid);

  const streams = await openMany(IDLE_STREAMS, (i) => `${node.url}/matches/${matches[i % IDLE_MATCHES]}/events`);
  expect(await metricValue(node.url, "touchline_streams_open")).toBe(IDLE_STREAMS);
  await Bun.sleep(SETTLE_MS);
  const after = rssBytes(node.proc.pid);
  const perStream = (after - before) / IDLE_STREAMS;
  console.log(
    `figures: node RSS ${(before / 1e6).toFixed(1)} MB before, ${(after / 1e6).toFixed(1)} MB with ${IDLE_STREAMS} idle streams: ${(perStream / 1024).toFixed(1)} KiB per idle stream`,
  );
  await Promise.all(streams.map((s) => s.close()));
  await waitFor(async () => (await metricValue(node.url, "touchline_streams_open")) === 0, 10_000, "streams closed");
}, 120_000);

test(`publish-to-delivery latency with ${SUBSCRIBERS} subscribers on one node`, async () => {
  const match = uniqueMatch("lat");
  await untilLatest(node.url, match, await publishOk(node.url, match, { type: "kickoff" }));
  const latencies: number[] = [];
  const streams = await openMany(SUBSCRIBERS, () => `${node.url}/matches/${match}/events`);
  for (const s of streams) {
    s.onEvent = (e) => {
      if (e.type !== "snapshot") latencies.push(e.receivedAt - dataOf<{ ts: number }>(e).ts);
    };
  }
  for (let i = 0; i < LATENCY_EVENTS; i++) {
    const sentAt = Date.now();
    await publishOk(node.url, match, { type: "tick", data: { i, text: "a goal-line clearance" } });
    await Bun.sleep(Math.max(0, PUBLISH_EVERY_MS - (Date.now() - sentAt)));
  }
  await Promise.all(streams.map((s) => s.untilEvents(1 + LATENCY_EVENTS, 30_000)));
  const metricsAfter = await (await fetch(`${node.url}/metrics`)).text();
  await Promise.all(streams.map((s) => s.close()));

  expect(latencies.length).toBe(SUBSCRIBERS * LATENCY_EVENTS);
  latencies.sort((a, b) => a - b);
  const nodeP50 = histogramQuantile(metricsAfter, "touchline_delivery_latency_seconds", 0.5);
  const nodeP99 = histogramQuantile(metricsAfter, "touchline_delivery_latency_seconds", 0.99);
  console.log(
    `figures: ${SUBSCRIBERS} subscribers x ${LATENCY_EVENTS} events (one per ${PUBLISH_EVERY_MS} ms): publish ts -> parsed by the test client ` +
      `median ${quantile(latencies, 0.5)} ms, p99 ${quantile(latencies, 0.99)} ms, max ${latencies.at(-1)} ms ` +
      `(node's own histogram, ts -> handed to the socket: p50 <= ${nodeP50 * 1000} ms, p99 <= ${nodeP99 * 1000} ms); ` +
      `the test client parses all ${SUBSCRIBERS} streams on one core of the same 2-core machine`,
  );
}, 120_000);
