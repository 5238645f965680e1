/**
 * A stream lives as long as its token: at the token's `exp` the node writes a final
 * `touchline.expired` event (no id, so Last-Event-ID stays on the last match event) and closes the
 * stream, counted as touchline_streams_closed_total{reason="auth_expired"}. Streams with different
 * expiries close each at its own time (one timer serves them all). A token already past `exp` opens no
 * stream, even inside the clock-skew allowance.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { dataOf, openSse, type SseConnection } from "../helpers/sse.ts";
import { metricValue, uniqueMatch } from "../integration/touchlineApi.ts";
import { SECRET, hsToken, publishWith, withToken, getWith } from "./securityFixtures.ts";

setDefaultTimeout(30_000);

/** The expiry timer fires within a few ms; allow for a loaded machine. */
const CLOSE_SLACK_MS = 750;

let nats: NatsFixture;
let node: NodeFixture;
let publisher: string;
const MATCH = uniqueMatch("expiry");

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url, env: { TOUCHLINE_JWT_SECRET: SECRET } });
  publisher = await hsToken({ publish: "*" });
  expect((await publishWith(node.url, MATCH, { type: "kickoff", private: true }, publisher)).status).toBe(201);
});

afterAll(async () => {
  await node?.kill();
  await nats?.stop();
});

/** A token for the private match whose `exp` is `seconds` whole seconds from now; returns it and its exp in ms. */
async function expiringToken(seconds: number): Promise<{ token: string; expMs: number }> {
  const nowS = Math.floor(Date.now() / 1000);
  const token = await hsToken({ subscribe: [MATCH], expiresIn: seconds });
  return { token, expMs: (nowS + seconds) * 1000 };
}

test("a live stream is closed at its token's expiry with a final touchline.expired event", async () => {
  const closedBefore = await metricValue(node.url, "touchline_streams_closed_total", { reason: "auth_expired" });
  const { token, expMs } = await expiringToken(2);
  const single = await openSse(withToken(`${node.url}/matches/${MATCH}/events`, token, "query").url);
  const multi = await openSse(`${node.url}/events?match=${MATCH}`, { headers: { cookie: `touchline_token=${token}` } });
  for (const c of [single, multi]) {
    expect(c.status).toBe(200);
    await c.untilEvents(1);
  }
  const goal = await publishWith(node.url, MATCH, { type: "goal", data: { minute: 9 } }, publisher);
  await single.until(() => single.events.some((e) => e.lastEventId === goal.json.id), 5000, "the goal");
  const endedAt = await Promise.all(
    [single, multi].map(async (c: SseConnection) => {
      await c.ended;
      return Date.now();
    }),
  );
  for (const [i, c] of [single, multi].entries()) {
    const last = c.events.at(-1)!;
    expect(last.type).toBe("touchline.expired");
    expect(dataOf<{ reason: string; expiredAt: number }>(last)).toMatchObject({ reason: "token_expired", expiredAt: expMs });
    expect(endedAt[i]!).toBeGreaterThanOrEqual(expMs);
    expect(endedAt[i]!).toBeLessThan(expMs + CLOSE_SLACK_MS);
    // No id on the final event: a reconnect resumes after the last match event.
    expect(c.events.at(-2)!.lastEventId).toBe(last.lastEventId);
  }
  expect(single.lastEventId).toBe(String(goal.json.id));
  expect(await metricValue(node.url, "touchline_streams_closed_total", { reason: "auth_expired" })).toBe(closedBefore + 2);
});

test("streams with different expiries each close at their own", async () => {
  const tokens = await Promise.all([3, 1, 2].map(expiringToken));
  const conns = await Promise.all(tokens.map((t) => openSse(`${node.url}/matches/${MATCH}/events`, { headers: { authorization: `Bearer ${t.token}` } })));
  const ends = await Promise.all(
    conns.map(async (c) => {
      await c.ended;
      return Date.now();
    }),
  );
  ends.forEach((end, i) => {
    expect(end).toBeGreaterThanOrEqual(tokens[i]!.expMs);
    expect(end).toBeLessThan(tokens[i]!.expMs + CLOSE_SLACK_MS);
    expect(conns[i]!.events.at(-1)!.type).toBe("touchline.expired");
  });
});

test("a token past exp opens no stream, though one-shot reads still allow the clock-skew margin", async () => {
  const justExpired = await hsToken({ subscribe: [MATCH], expiresIn: -2 });
  const conn = await openSse(`${node.url}/matches/${MATCH}/events`, { headers: { authorization: `Bearer ${justExpired}` } });
  expect(conn.status).toBe(401);
  await conn.ended;
  expect(conn.events).toHaveLength(0);
  expect(JSON.parse(conn.body)).toMatchObject({ error: "unauthorized" });
  expect((await getWith(`${node.url}/matches/${MATCH}`, justExpired)).status).toBe(200);
  const longExpired = await hsToken({ subscribe: [MATCH], expiresIn: -60 });
  expect((await getWith(`${node.url}/matches/${MATCH}`, longExpired)).status).toBe(401);
});

test("a stream whose client leaves before expiry is simply gone (its timer entry does not fire on a closed stream)", async () => {
  const { token, expMs } = await expiringToken(2);
  const closedBefore = await metricValue(node.url, "touchline_streams_closed_total", { reason: "auth_expired" });
  const conn = await openSse(`${node.url}/matches/${MATCH}/events`, { headers: { authorization: `Bearer ${token}` } });
  await conn.untilEvents(1);
  await conn.close();
  await Bun.sleep(Math.max(0, expMs - Date.now()) + 300);
  expect(await metricValue(node.url, "touchline_streams_closed_total", { reason: "auth_expired" })).toBe(closedBefore);
  expect(await metricValue(node.url, "touchline_streams_open")).toBe(0);
});
