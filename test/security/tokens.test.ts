/**
 * HS256 tokens against a real node (real NATS JetStream): every way a token can be refused, on
 * publishing and on each way of reading a private match, and the happy paths by each transport
 * (header, cookie, query). A refusal is always JSON, never a stream.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openSse, dataOf } from "../helpers/sse.ts";
import { metricValue, uniqueMatch } from "../integration/touchlineApi.ts";
import { SECRET, TRANSPORTS, getWith, hsToken, noneToken, publishWith, untilApplied, withToken, type Answer } from "./securityFixtures.ts";

setDefaultTimeout(30_000);

let nats: NatsFixture;
let node: NodeFixture;
const PUB = uniqueMatch("pub");
const PRIV = uniqueMatch("priv");
/** Listed after PRIV (older), so a page of one that ended at PRIV would name it as its cursor. */
const OLDER = uniqueMatch("older");
let publisher: string;
let reader: string;

const kickoff = (priv = false) => ({
  type: "kickoff",
  data: { minute: 0 },
  state: { homeScore: 0, awayScore: 0, status: "live" },
  ...(priv ? { private: true } : {}),
});

function expectRefused(a: Answer, status: 401 | 403): void {
  expect(a.status).toBe(status);
  expect(a.headers.get("content-type")).toStartWith("application/json");
  expect(a.json.error).toBe(status === 401 ? "unauthorized" : "forbidden");
  expect(typeof a.json.message).toBe("string");
  expect(a.headers.get("www-authenticate")).toStartWith("Bearer");
}

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url, env: { TOUCHLINE_JWT_SECRET: SECRET } });
  publisher = await hsToken({ publish: "*" });
  reader = await hsToken({ subscribe: [PRIV] });
  expect((await publishWith(node.url, OLDER, kickoff(), publisher)).status).toBe(201);
  expect((await publishWith(node.url, PUB, kickoff(), publisher)).status).toBe(201);
  const priv = await publishWith(node.url, PRIV, kickoff(true), publisher);
  expect(priv.status).toBe(201);
  await untilApplied(node.url, PRIV, String(priv.json.id), reader);
});

afterAll(async () => {
  await node?.kill();
  await nats?.stop();
});

describe("publishing needs a valid token with a covering touchline.publish claim", () => {
  const goal = { type: "goal", data: { minute: 3 } };

  test("no token: 401", async () => {
    expectRefused(await publishWith(node.url, PUB, goal), 401);
  });

  test("a malformed Authorization header, an empty bearer, a garbage token: 401", async () => {
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer not.a.jwt", "Bearer a b"]) {
      const res = await fetch(`${node.url}/matches/${PUB}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization },
        body: JSON.stringify(goal),
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toBe("unauthorized");
    }
  });

  test("a bad signature, alg none, expired, not yet valid, a claim of the wrong shape: 401", async () => {
    const cases: [string, string][] = [
      ["signed with another secret", await hsToken({ publish: "*" }, "another-secret-0123456789abcdef")],
      ["alg none", noneToken()],
      ["expired a minute ago", await hsToken({ publish: "*", expiresIn: -60 })],
      ["not valid for a minute", await hsToken({ publish: "*", notBeforeIn: 60 })],
      ["publish claim is a bare string", await hsToken({ extra: { "touchline.publish": PUB } })],
      ["publish claim holds a number", await hsToken({ extra: { "touchline.publish": [42] } })],
    ];
    for (const [what, token] of cases) {
      const a = await publishWith(node.url, PUB, goal, token);
      expect({ what, status: a.status }).toEqual({ what, status: 401 });
      expectRefused(a, 401);
    }
    const expired = await publishWith(node.url, PUB, goal, cases[2]![1]);
    expect(String(expired.json.message)).toContain("expired");
    expect(expired.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  test("a valid token whose claim does not cover the match: 403", async () => {
    const subscribeOnly = await hsToken({ subscribe: "*" });
    expectRefused(await publishWith(node.url, PUB, goal, subscribeOnly), 403);
    const otherMatch = await hsToken({ publish: ["some-other-match"] });
    const a = await publishWith(node.url, PUB, goal, otherMatch);
    expectRefused(a, 403);
    expect(a.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
  });

  test("a covering token by header, cookie or query publishes (201)", async () => {
    const exact = await hsToken({ publish: [PUB] });
    for (const transport of TRANSPORTS) {
      const a = await publishWith(node.url, PUB, goal, exact, transport);
      expect({ transport, status: a.status }).toEqual({ transport, status: 201 });
    }
  });

  test('refusals are counted in touchline_rejected_total{reason="unauthorized"}', async () => {
    const before = await metricValue(node.url, "touchline_rejected_total", { reason: "unauthorized" });
    await publishWith(node.url, PUB, goal);
    await publishWith(node.url, PUB, goal, await hsToken({ subscribe: "*" }));
    expect(await metricValue(node.url, "touchline_rejected_total", { reason: "unauthorized" })).toBe(before + 2);
  });
});

describe("a private match needs a covering touchline.subscribe claim on every read path", () => {
  const paths = () => ({
    stream: `${node.url}/matches/${PRIV}/events`,
    multiplexed: `${node.url}/events?match=${PUB}&match=${PRIV}`,
    poll: `${node.url}/matches/${PRIV}/poll?wait=0`,
    match: `${node.url}/matches/${PRIV}`,
  });

  test("no token: 401 JSON, never a stream", async () => {
    for (const [what, url] of Object.entries(paths())) {
      const a = await getWith(url, undefined, "header", { accept: "text/event-stream" });
      expect({ what, status: a.status }).toEqual({ what, status: 401 });
      expectRefused(a, 401);
    }
  });

  test("a token without a covering claim: 403 JSON, never a stream", async () => {
    const tokens = [await hsToken({ publish: "*" }), await hsToken({ subscribe: ["another-match"] })];
    for (const token of tokens) {
      for (const [what, url] of Object.entries(paths())) {
        const a = await getWith(url, token, "header", { accept: "text/event-stream" });
        expect({ what, status: a.status }).toEqual({ what, status: 403 });
        expectRefused(a, 403);
      }
    }
  });

  test("a bad token is a 401 even on a public match (a present token is never ignored)", async () => {
    for (const token of [await hsToken({ subscribe: "*", expiresIn: -60 }), noneToken(), "garbage"]) {
      const conn = await openSse(withToken(`${node.url}/matches/${PUB}/events`, token, "query").url);
      expect(conn.status).toBe(401);
      await conn.ended;
      expect(JSON.parse(conn.body).error).toBe("unauthorized");
      expect(conn.events).toHaveLength(0);
    }
  });

  test("public matches still stream without a token", async () => {
    const conn = await openSse(`${node.url}/matches/${PUB}/events`);
    expect(conn.status).toBe(200);
    await conn.untilEvents(1);
    expect(conn.events[0]!.type).toBe("snapshot");
    await conn.close();
  });

  test("with the claim, by header, cookie or query: snapshot then live events", async () => {
    for (const transport of TRANSPORTS) {
      const t = withToken(`${node.url}/matches/${PRIV}/events`, reader, transport);
      const conn = await openSse(t.url, { headers: t.headers });
      expect({ transport, status: conn.status }).toEqual({ transport, status: 200 });
      await conn.untilEvents(1);
      expect(conn.events[0]!.type).toBe("snapshot");
      expect(dataOf<{ state: { status: string } }>(conn.events[0]!).state.status).toBe("live");
      const goal = await publishWith(node.url, PRIV, { type: "goal", data: { transport }, state: { homeScore: 1 } }, publisher);
      await conn.until(() => conn.events.some((e) => e.lastEventId === goal.json.id), 5000, `the goal published with the ${transport} reader open`);
      await conn.close();
    }
  });

  test("with the claim: multiplexed stream, poll and GET /matches/{m}", async () => {
    const conn = await openSse(`${node.url}/events?match=${PUB}&match=${PRIV}`, { headers: { authorization: `Bearer ${reader}` } });
    expect(conn.status).toBe(200);
    await conn.untilEvents(2);
    expect(conn.snapshots.map((e) => dataOf<{ match: string }>(e).match).sort()).toEqual([PUB, PRIV].sort());
    await conn.close();

    const polled = await getWith(`${node.url}/matches/${PRIV}/poll?wait=0`, reader, "cookie");
    expect(polled.status).toBe(200);
    expect(polled.json.match).toBe(PRIV);

    const got = await getWith(`${node.url}/matches/${PRIV}`, reader, "query");
    expect(got.status).toBe(200);
    expect((got.json.state as { status: string }).status).toBe("live");
  });

  test("the listing shows a private match only to a covering claim, and no page's cursor names it", async () => {
    const names = async (token?: string, limit = 1000) => {
      const all: string[] = [];
      let cursor: string | null = null;
      do {
        const url: string = `${node.url}/matches?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`;
        const page = await getWith(url, token);
        expect(page.status).toBe(200);
        all.push(...(page.json.matches as { match: string }[]).map((m) => m.match));
        cursor = page.json.next as string | null;
        if (cursor !== null) all.push(`cursor:${cursor}`);
      } while (cursor !== null);
      return all;
    };
    for (const token of [undefined, await hsToken({ publish: "*" }), await hsToken({ subscribe: ["another-match"] })]) {
      const seen = await names(token, 1);
      expect(seen).toContain(PUB);
      expect(seen).toContain(OLDER);
      expect(seen.filter((n) => n.includes(PRIV))).toEqual([]);
    }
    expect(await names(reader)).toContain(PRIV);
    expect(await names(await hsToken({ subscribe: "*" }))).toContain(PRIV);
  });
});

describe("a match that turns private while streamed", () => {
  test("a stream without the claim gets touchline.forbidden and ends; nothing of the private event reaches it", async () => {
    const match = uniqueMatch("turns");
    await publishWith(node.url, match, kickoff(), publisher);
    const closedBefore = await metricValue(node.url, "touchline_streams_closed_total", { reason: "auth_expired" });
    const single = await openSse(`${node.url}/matches/${match}/events`);
    const multi = await openSse(`${node.url}/events?match=${PUB}&match=${match}`);
    await single.untilEvents(1);
    await multi.untilEvents(2);
    await publishWith(node.url, match, { type: "goal", data: { secret: "private goal" }, private: true }, publisher);
    for (const conn of [single, multi]) {
      await conn.ended;
      const last = conn.events.at(-1)!;
      expect(last.type).toBe("touchline.forbidden");
      expect(dataOf<{ reason: string; match: string }>(last)).toMatchObject({ reason: "match_private", match });
      expect(conn.events.some((e) => e.data.includes("private goal"))).toBe(false);
    }
    expect(await metricValue(node.url, "touchline_streams_closed_total", { reason: "auth_expired" })).toBe(closedBefore + 2);
    // Reconnecting without a claim is now refused outright.
    const again = await getWith(`${node.url}/matches/${match}/events`, undefined, "header", { accept: "text/event-stream" });
    expect(again.status).toBe(401);
  });
});
