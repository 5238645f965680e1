/**
 * MAX_CONNECTIONS: past the cap a stream is refused in the form a browser survives (200, `retry:` and
 * one `touchline.refused` event with the error `at_capacity` and the wait: the old 503's Retry-After
 * of 2 s plus jitter, see test/helpers/refusal.ts), still counted as a capacity refusal; once a
 * stream closes a new one is accepted. A multiplexed stream counts once; plain requests do not count.
 * Full, /readyz is 503 (saturated); below 90% of the cap it is 200 again.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { waitFor } from "../helpers/cluster.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { expectAdmitted, expectStreamRefusal, isStreamRefusal } from "../helpers/refusal.ts";
import { getJson, metricValue, publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

const MAX_CONNECTIONS = 3;

const { node } = useNode({ env: { MAX_CONNECTIONS: String(MAX_CONNECTIONS) } });

/** At capacity the node asks for 2 s (the Retry-After its 503 used to carry), plus jitter. */
async function expectRefused(conn: SseConnection): Promise<void> {
  await expectStreamRefusal(conn, { error: "at_capacity", retryAfterS: 2 });
}

test(`the stream past MAX_CONNECTIONS=${MAX_CONNECTIONS} is refused in the SSE form (at_capacity, retry); after one closes a new one is accepted`, async () => {
  const match = uniqueMatch("cap");
  const other = uniqueMatch("cap2");
  await publishOk(node.url, match, { type: "kickoff" });
  const open = [
    await openSse(`${node.url}/matches/${match}/events`),
    // A multiplexed stream of two matches counts once.
    await openSse(`${node.url}/events?match=${match}&match=${other}`),
    await openSse(`${node.url}/matches/${other}/events`),
  ];
  await Promise.all(open.map((s) => expectAdmitted(s)));

  await expectRefused(await openSse(`${node.url}/matches/${match}/events`));
  await expectRefused(await openSse(`${node.url}/events?match=${match}`));
  // Plain requests are not streams: they are still served at capacity.
  expect((await getJson(`${node.url}/matches/${match}`)).status).toBe(200);
  expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
  // Full (at least 95% of MAX_CONNECTIONS), the node says it is not ready, so a balancer sends new
  // clients elsewhere before this node has to refuse them.
  const readyz = await fetch(`${node.url}/readyz`);
  expect({ status: readyz.status, body: await readyz.json() }).toMatchObject({ status: 503, body: { ready: false, saturated: true } });
  expect(await metricValue(node.url, "touchline_rejected_total", { reason: "capacity" })).toBeGreaterThanOrEqual(2);
  // Refused streams never count as open ones.
  expect(await metricValue(node.url, "touchline_streams_open")).toBe(MAX_CONNECTIONS);

  // The open streams are unaffected by the refusals.
  const id = await publishOk(node.url, match, { type: "goal" });
  await open[0]!.untilEvents(2);
  expect(open[0]!.events[1]!.lastEventId).toBe(id);

  await open[2]!.close();
  await waitFor(async () => (await metricValue(node.url, "touchline_streams_open")) === MAX_CONNECTIONS - 1, 5000, "a free slot");
  // Below 90% again: ready.
  expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
  const again = await openSse(`${node.url}/matches/${match}/events`);
  expect(again.status).toBe(200);
  await again.untilEvents(1);
  expect(again.events[0]!.type).toBe("snapshot");

  await expectRefused(await openSse(`${node.url}/matches/${match}/events`));
  await Promise.all([again, open[0]!, open[1]!].map((s) => s.close()));
});

test(`a storm of 40 resumes at once on a node of ${MAX_CONNECTIONS}: exactly ${MAX_CONNECTIONS} streams, every other one refused`, async () => {
  // A resume waits for its match's actor to be ready (is the match over?) between the capacity check
  // and the open; an actor starting from nothing waits on NATS. 40 of them wait there at once: each
  // must have held its place, or all pass the check before any opens.
  const tag = (await publishOk(node.url, uniqueMatch("tag"), { type: "kickoff" })).split("@")[1];
  const matches = Array.from({ length: 40 }, (_, i) => uniqueMatch(`storm${i}`));
  const storm = await Promise.all(matches.map((m) => openSse(`${node.url}/matches/${m}/events`, { headers: { "last-event-id": `1@${tag}` } })));
  await Promise.all(storm.map((s) => s.untilEvents(1).catch(() => {})));
  const refused = storm.filter((s) => isStreamRefusal(s)).length;
  expect({ streams: await metricValue(node.url, "touchline_streams_open"), refused }).toEqual({ streams: MAX_CONNECTIONS, refused: 40 - MAX_CONNECTIONS });
  await Promise.all(storm.map((s) => s.close()));
  await waitFor(async () => (await metricValue(node.url, "touchline_streams_open")) === 0, 5000, "every stream closed");
  // Every place held by a refused or finished request was given back: the node takes streams again.
  const after = await openSse(`${node.url}/matches/${matches[0]}/events`);
  await expectAdmitted(after);
  await after.close();
});
