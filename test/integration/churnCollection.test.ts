/**
 * GC_AFTER_STREAM_CHURN wired into a real node: a storm of stream opens and closes is followed by one
 * full collection once it is over (logged at debug), never during it, and not at all below the threshold.
 * What the collection saves is measured by the bench (memory per stream after an opening storm).
 */
import { expect, test } from "bun:test";
import { waitFor } from "../helpers/cluster.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { uniqueMatch } from "./touchlineApi.ts";

const THRESHOLD = 300;
const COLLECTED = "collected garbage after stream churn";

const { node } = useNode({ env: { GC_AFTER_STREAM_CHURN: String(THRESHOLD), LOG_LEVEL: "debug", MAX_CONNECTIONS: "2000" } });

const collections = () =>
  node
    .output()
    .split("\n")
    .filter((l) => l.includes(COLLECTED))
    .map((l) => JSON.parse(l) as { ms: number; streams: number });

async function openStreams(count: number): Promise<SseConnection[]> {
  const match = uniqueMatch("churn");
  const streams = await Promise.all(Array.from({ length: count }, () => openSse(`${node.url}/matches/${match}/events`)));
  await Promise.all(streams.map((s) => s.untilEvents(1, 15_000)));
  return streams;
}

test("below the threshold: no collection", async () => {
  const streams = await openStreams(THRESHOLD / 3);
  for (const s of streams) s.close();
  await Bun.sleep(1_500);
  expect(collections()).toHaveLength(0);
});

test("a storm of opens and closes is followed by exactly one collection, once it is quiet", async () => {
  // With the first test's opens and closes (200), these 200 opens cross the threshold.
  const streams = await openStreams(THRESHOLD * (2 / 3));
  await waitFor(async () => collections().length === 1, 5_000, "a collection after the storm");
  const [first] = collections();
  expect(first!.streams).toBe(THRESHOLD * (2 / 3));
  expect(first!.ms).toBeGreaterThanOrEqual(0);
  // Steady streaming afterwards (heartbeats, no churn) never triggers another one.
  await Bun.sleep(1_500);
  expect(collections()).toHaveLength(1);
  for (const s of streams) s.close();
  await Bun.sleep(1_500);
  expect(collections()).toHaveLength(1); // 200 closes: below the threshold again
});
