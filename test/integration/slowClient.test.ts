/**
 * Invariant 6: a slow client never slows the others and never grows memory without bound. One client
 * sends its GET and then never reads; the others receive 10,000 events. The others get everything, the
 * slow one is cut off once its unsent bytes pass CLIENT_BUFFER_BYTES, and the node's RSS stays bounded.
 */
import { expect, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse } from "../helpers/sse.ts";
import { compareDelivery } from "./deliveryCheck.ts";
import { byId, metricValue, publishConcurrently, publishOk, rssBytes, uniqueMatch, untilLatest } from "./touchlineApi.ts";

const CLIENT_BUFFER_BYTES = 65_536;
const EVENTS = 10_000;
const PUBLISH_CONCURRENCY = 16;
const FAST_CLIENTS = 3;
/**
 * About 1 KB per event, 10 MB per stream. With ~200-byte events (2.3 MB per stream) the kernel alone
 * absorbs a client that never reads (on this machine the loopback send buffer autotunes up to 4 MB,
 * tcp_wmem, plus 128 KB of receive buffer), so no server could see the backpressure and the test would
 * prove nothing. The stream must be well past kernel buffers plus CLIENT_BUFFER_BYTES.
 */
const TEXT = "Touchline slow-client test: a line of commentary repeated to make each event about one kilobyte on the wire. ".repeat(9);
const RSS_BOUND_BYTES = 300 * 1024 * 1024;
const RSS_SAMPLE_MS = 100;

const { node } = useNode({ env: { CLIENT_BUFFER_BYTES: String(CLIENT_BUFFER_BYTES) } });

test(`one client that never reads is cut off while ${FAST_CLIENTS} others receive ${EVENTS} events; node memory stays bounded`, async () => {
  const match = uniqueMatch("slow");
  const kickoff = await publishOk(node.url, match, { type: "kickoff" });
  await untilLatest(node.url, match, kickoff);
  const rssAtStart = rssBytes(node.proc.pid);
  const cutBefore = await metricValue(node.url, "touchline_slow_clients_cut_total");

  const fast = await Promise.all(Array.from({ length: FAST_CLIENTS }, () => openSse(`${node.url}/matches/${match}/events`)));
  await Promise.all(fast.map((s) => s.untilEvents(1)));
  // Sends its request, then stops reading at once: the kernel buffers fill and the node sees backpressure.
  const slow = await openSse(`${node.url}/matches/${match}/events`, { paused: true, waitForHead: false });
  await Bun.sleep(200);

  let peakRss = rssAtStart;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssBytes(node.proc.pid));
  }, RSS_SAMPLE_MS);
  const startedAt = Date.now();
  const published = await publishConcurrently(node.url, match, EVENTS, PUBLISH_CONCURRENCY, (i) => ({ type: "comment", data: { i, text: TEXT } }));
  await Promise.all(fast.map((s) => s.untilEvents(1 + EVENTS, 30_000)));
  const elapsedMs = Date.now() - startedAt;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, rssBytes(node.proc.pid));

  const expected = [...published].sort(byId);
  for (const s of fast) {
    expect(s.isEnded).toBe(false);
    expect(
      compareDelivery(
        expected,
        s.matchEvents.map((e) => e.lastEventId),
      ),
    ).toMatchObject({ exact: true });
  }
  const frameBytes = fast[0]!.bodyBytes;

  expect(await metricValue(node.url, "touchline_slow_clients_cut_total")).toBeGreaterThanOrEqual(cutBefore + 1);
  // When it reads again it finds what the kernel held, then the end of a stream that was cut off.
  slow.resume();
  await slow.until(() => slow.isEnded, 10_000, "the slow client's stream to end");
  expect(slow.matchEvents.length).toBeLessThan(EVENTS);

  expect(peakRss).toBeLessThan(RSS_BOUND_BYTES);
  console.log(
    `slow client: ${EVENTS} events (${(frameBytes / 1e6).toFixed(1)} MB per stream) in ${elapsedMs} ms; the slow client got ${slow.matchEvents.length} events before the cut; ` +
      `node RSS ${(rssAtStart / 1e6).toFixed(0)} MB at start, peak ${(peakRss / 1e6).toFixed(0)} MB`,
  );
  await Promise.all(fast.map((s) => s.close()));
}, 60_000);
