/**
 * One event larger than a quarter of CLIENT_BUFFER_BYTES (here a 4 KiB buffer and a 60 KB event, under
 * the default 64 KiB MAX_BODY_BYTES): readers that keep up get it and stay. The ceiling that cuts a
 * stream at once was 4 x the buffer (16 KiB), so such an event cut every stream it reached, a fast
 * reader's and a just-opened stream's (its snapshot dropped) alike; it now holds the buffer plus one
 * largest event (config.ts, CEILING_FRAME_ALLOWANCE_BYTES).
 */
import { expect, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse } from "../helpers/sse.ts";
import { metricValue, publishOk, uniqueMatch, untilLatest } from "./touchlineApi.ts";

const { node } = useNode({ env: { CLIENT_BUFFER_BYTES: "4096" } });

test("an event of 60 KB over a 4 KiB client buffer reaches a reader and a just-opened stream, and cuts neither", async () => {
  const match = uniqueMatch("large");
  const kickoff = await publishOk(node.url, match, { type: "kickoff" });
  await untilLatest(node.url, match, kickoff);
  const url = `${node.url}/matches/${match}/events`;
  const slowBefore = await metricValue(node.url, "touchline_streams_closed_total", { reason: "slow" });

  const reader = await openSse(url);
  await reader.until(() => reader.snapshots.length > 0, 5000, "the reader's snapshot");
  const text = "x".repeat(60_000);
  const large = publishOk(node.url, match, { type: "comment", data: { text } });
  // Opened while the large event is on its way: its snapshot and the event may land in one pass.
  const fresh = await openSse(url);
  const largeId = await large;
  const after = await publishOk(node.url, match, { type: "goal", data: { minute: 1 } });

  for (const s of [reader, fresh]) {
    await s.until(() => s.events.some((e) => e.lastEventId === after) || s.isEnded, 10_000, "the event after the large one");
    expect(s.isEnded).toBe(false);
    expect(s.snapshots).toHaveLength(1);
    expect(s.matchEvents.map((e) => e.lastEventId).at(-1)).toBe(after);
  }
  const received = reader.matchEvents.find((e) => e.lastEventId === largeId);
  expect((JSON.parse(received?.data ?? "{}") as { data?: { text?: string } }).data?.text).toBe(text);
  expect(await metricValue(node.url, "touchline_streams_closed_total", { reason: "slow" })).toBe(slowBefore);
  await Promise.all([reader.close(), fresh.close()]);
});
