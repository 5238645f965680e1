/**
 * MAX_CONNECTIONS: past the cap a stream is refused with 503, `Retry-After` and the JSON error; once a
 * stream closes a new one is accepted. A multiplexed stream counts once; plain requests do not count.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { waitFor } from "../helpers/cluster.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { getJson, metricValue, publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

const MAX_CONNECTIONS = 3;

const { node } = useNode({ env: { MAX_CONNECTIONS: String(MAX_CONNECTIONS) } });


async function expectRefused(conn: SseConnection): Promise<void> {
  await conn.until(() => conn.isEnded, 5000, "the refusal body");
  expect(conn.status).toBe(503);
  const retryAfter = conn.headers.get("retry-after");
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  expect(conn.headers.get("content-type") ?? "").toStartWith("application/json");
  const body = JSON.parse(conn.body) as Record<string, unknown>;
  expect(typeof body.error).toBe("string");
  expect(typeof body.message).toBe("string");
}

test(`the stream past MAX_CONNECTIONS=${MAX_CONNECTIONS} gets 503 with Retry-After; after one closes a new one is accepted`, async () => {
  const match = uniqueMatch("cap");
  const other = uniqueMatch("cap2");
  await publishOk(node.url, match, { type: "kickoff" });
  const open = [
    await openSse(`${node.url}/matches/${match}/events`),
    // A multiplexed stream of two matches counts once.
    await openSse(`${node.url}/events?match=${match}&match=${other}`),
    await openSse(`${node.url}/matches/${other}/events`),
  ];
  for (const s of open) expect(s.status).toBe(200);
  await Promise.all(open.map((s) => s.untilEvents(1)));

  await expectRefused(await openSse(`${node.url}/matches/${match}/events`));
  await expectRefused(await openSse(`${node.url}/events?match=${match}`));
  // Plain requests are not streams: they are still served at capacity.
  expect((await getJson(`${node.url}/matches/${match}`)).status).toBe(200);
  expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
  expect(await metricValue(node.url, "touchline_rejected_total", { reason: "capacity" })).toBeGreaterThanOrEqual(2);

  // The open streams are unaffected by the refusals.
  const id = await publishOk(node.url, match, { type: "goal" });
  await open[0]!.untilEvents(2);
  expect(open[0]!.events[1]!.lastEventId).toBe(id);

  await open[2]!.close();
  await waitFor(async () => (await metricValue(node.url, "touchline_streams_open")) === MAX_CONNECTIONS - 1, 5000, "a free slot");
  const again = await openSse(`${node.url}/matches/${match}/events`);
  expect(again.status).toBe(200);
  await again.untilEvents(1);
  expect(again.events[0]!.type).toBe("snapshot");

  await expectRefused(await openSse(`${node.url}/matches/${match}/events`));
  await Promise.all([again, open[0]!, open[1]!].map((s) => s.close()));
});
