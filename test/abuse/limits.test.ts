/**
 * Every abuse limit's refusal against a real node: the status, the JSON error, Retry-After where it
 * applies (a stream request: the SSE refusal, test/helpers/refusal.ts, its error code and its wait),
 * touchline_limited_total{limit} (and touchline_rejected_total{reason}) counted; and that the
 * limits are per client: requests come from distinct source addresses (127.0.0.x, see fromAddress.ts),
 * so one client's refusals never touch another.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, waitFor, waitForClusterSize, withNodeLogs, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { sendRaw, type SseConnection } from "../helpers/sse.ts";
import { metricValue, publishOk, uniqueMatch } from "../integration/touchlineApi.ts";
import { hsToken, SECRET } from "../security/securityFixtures.ts";
import { MAX_JSON_DEPTH } from "../../src/match/jsonDepth.ts";
import { LIMIT_NAMES, LIMITERS } from "../../src/telemetry/metricLabels.ts";
import { BUN_DEFAULT_MAX_HEADER_BYTES } from "../../src/limits/limitsConfig.ts";
import { answerFrom, openSseFrom, publishFrom, requestFrom } from "./fromAddress.ts";
import { expectAdmitted, expectStreamRefusal, wasAdmitted } from "../helpers/refusal.ts";

setDefaultTimeout(30_000);

const STREAM_CAP = 3;
const STREAM_RATE = 2;
const STREAM_BURST = 3;
const PUBLISH_RATE = 2;
const PUBLISH_BURST = 3;
const MAX_HEADER_BYTES = 2048;
const MAX_BODY_BYTES = 1024;
const MAX_MATCHES = 4;
/** Over a stream request's head line at MAX_MATCHES_PER_STREAM=4 (about 4.8 KB), under Bun's own 16 KiB. */
const STREAM_FILLER_OVER_ITS_LINE = 12_000;

let nats: NatsFixture;
/** Open-stream cap only (rates off), so the cap is seen alone. */
let capNode: NodeFixture;
/** Rates and sizes, no open-stream cap. */
let rateNode: NodeFixture;
/** The cap behind a trusted proxy: clients told apart by X-Forwarded-For. */
let proxiedNode: NodeFixture;
/** Authorization on: publishes are counted per token. */
let authNode: NodeFixture;

/** Loopback is not exempt here: each 127.0.0.x source address is a client of its own. */
const COMMON = { LIMITS_EXEMPT: "none", CLIENT_BUFFER_BYTES: "4096" };

beforeAll(async () => {
  nats = await startNats();
  [capNode, rateNode, proxiedNode, authNode] = await Promise.all([
    startNode({ natsUrl: nats.url, env: { ...COMMON, MAX_STREAMS_PER_ADDRESS: String(STREAM_CAP), STREAM_RATE_PER_ADDRESS: "0", PUBLISH_RATE: "0" } }),
    startNode({
      natsUrl: nats.url,
      env: {
        ...COMMON,
        MAX_STREAMS_PER_ADDRESS: "0",
        STREAM_RATE_PER_ADDRESS: String(STREAM_RATE),
        STREAM_BURST_PER_ADDRESS: String(STREAM_BURST),
        PUBLISH_RATE: String(PUBLISH_RATE),
        PUBLISH_BURST: String(PUBLISH_BURST),
        MAX_HEADER_BYTES: String(MAX_HEADER_BYTES),
        MAX_BODY_BYTES: String(MAX_BODY_BYTES),
        MAX_MATCHES_PER_STREAM: String(MAX_MATCHES),
      },
    }),
    startNode({ natsUrl: nats.url, env: { ...COMMON, TRUST_PROXY: "loopback", MAX_STREAMS_PER_ADDRESS: "2", STREAM_RATE_PER_ADDRESS: "0" } }),
    startNode({
      natsUrl: nats.url,
      env: { ...COMMON, TOUCHLINE_JWT_SECRET: SECRET, PUBLISH_RATE: String(PUBLISH_RATE), PUBLISH_BURST: String(PUBLISH_BURST) },
    }),
  ]);
  // Membership settled before any test: a ring still growing would move matches between the tests' steps.
  await waitForClusterSize([capNode, rateNode, proxiedNode, authNode], 4);
});

afterAll(async () => {
  await Promise.all([capNode, rateNode, proxiedNode, authNode].map((n) => n?.kill()));
  await nats?.stop();
});

interface Refusal {
  status: number;
  error: string;
  retryAfter: string | null;
}

/** The answer must be a complete JSON error; returns what a test compares. */
async function refusalOf(conn: SseConnection): Promise<Refusal> {
  await conn.until(() => conn.isEnded, 5000, "the whole error answer");
  expect(conn.headers.get("content-type") ?? "").toStartWith("application/json");
  const body = JSON.parse(conn.body) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(["error", "message"]);
  expect(typeof body.message).toBe("string");
  return { status: conn.status, error: String(body.error), retryAfter: conn.headers.get("retry-after") };
}

const limited = (node: NodeFixture, limit: string) => metricValue(node.url, "touchline_limited_total", { limit });
const rejected = (node: NodeFixture, reason: string) => metricValue(node.url, "touchline_rejected_total", { reason });
const openOnNode = (node: NodeFixture) => metricValue(node.url, "touchline_streams_open");

describe("MAX_STREAMS_PER_ADDRESS", () => {
  test(`a client address holds at most ${STREAM_CAP} streams; another address is unaffected; a closed stream frees its slot`, async () => {
    const match = uniqueMatch("cap");
    await publishOk(capNode.url, match, { type: "kickoff" });
    const before = await limited(capNode, "streams_per_address");
    const rateLimitedBefore = await rejected(capNode, "rate_limited");

    const held = [
      await openSseFrom("127.0.0.2", `${capNode.url}/matches/${match}/events`),
      // A multiplexed stream counts once, whatever it carries.
      await openSseFrom("127.0.0.2", `${capNode.url}/events?match=${match}&match=${uniqueMatch("other")}`),
      await openSseFrom("127.0.0.2", `${capNode.url}/matches/${match}/events`),
    ];
    for (const s of held) await expectAdmitted(s);

    const refused = await expectStreamRefusal(await openSseFrom("127.0.0.2", `${capNode.url}/matches/${match}/events`), {
      error: "rate_limited",
      retryAfterS: 5,
    });
    expect(refused.message).toContain("open streams");
    // A long poll is held open like a stream: refused too.
    expect((await refusalOf(await answerFrom("127.0.0.2", `${capNode.url}/matches/${match}/poll?wait=0`))).status).toBe(429);
    expect(await limited(capNode, "streams_per_address")).toBe(before + 2);
    expect(await rejected(capNode, "rate_limited")).toBe(rateLimitedBefore + 2);

    const neighbour = await openSseFrom("127.0.0.3", `${capNode.url}/matches/${match}/events`);
    await expectAdmitted(neighbour);

    await held[0]!.close();
    await waitFor(
      async () => wasAdmitted(await openSseFrom("127.0.0.2", `${capNode.url}/matches/${match}/events`).then((s) => (held[0] = s))),
      5000,
      "a freed slot",
    );
    await Promise.all([...held, neighbour].map((s) => s.close()));
  });

  test("the slot comes back however the stream ended: polite close, vanished socket, cut off as slow, long poll answered", () =>
    // Four nodes share the nats-server, so the match may be owned elsewhere: their logs come with a failure.
    withNodeLogs([capNode, rateNode, proxiedNode, authNode], async () => {
      const from = "127.0.0.4";
      const baseline = await openOnNode(capNode);
      const slowBefore = await metricValue(capNode.url, "touchline_streams_closed_total", { reason: "slow" });
      // Each step on a match of its own: a round's last filler can still be on its way to this node when
      // the next step opens its streams, and one event past the ceiling cut every stream it reached at
      // once, before its first event (seen in CI under load, when the ceiling was 4 × CLIENT_BUFFER_BYTES,
      // 16 KiB here; it now holds the buffer and one largest event: largeEvent.test.ts).
      const freshMatch = async (): Promise<{ match: string; url: string }> => {
        const match = uniqueMatch("reasons");
        await publishOk(capNode.url, match, { type: "kickoff" });
        return { match, url: `${capNode.url}/matches/${match}/events` };
      };

      for (let round = 0; round < 2; round++) {
        const { match, url } = await freshMatch();
        const polite = await openSseFrom(from, url);
        const vanished = await openSseFrom(from, url);
        const slow = await openSseFrom(from, url);
        await Promise.all([polite, vanished, slow].map((s) => expectAdmitted(s)));
        await polite.close();
        vanished.destroy();
        // Stop reading and publish past CLIENT_BUFFER_BYTES (4 KiB): the node cuts the stream off.
        slow.pause();
        const filler = "x".repeat(60_000);
        await waitFor(
          async () => {
            await publishOk(capNode.url, match, { type: "goal", data: filler });
            return (await metricValue(capNode.url, "touchline_streams_closed_total", { reason: "slow" })) > slowBefore + round;
          },
          15_000,
          "the paused stream cut off as slow",
        );
        slow.destroy();
        await waitFor(async () => (await openOnNode(capNode)) === baseline, 5000, "streams_open back to its baseline");
      }
      // A long poll that was answered gives its slot back too: three in a row, then three streams still fit.
      const { match, url } = await freshMatch();
      for (let i = 0; i < STREAM_CAP; i++) expect((await answerFrom(from, `${capNode.url}/matches/${match}/poll?wait=0`)).status).toBe(200);
      const again = await Promise.all(Array.from({ length: STREAM_CAP }, () => openSseFrom(from, url)));
      await Promise.all(again.map((s) => expectAdmitted(s)));
      await Promise.all(again.map((s) => s.close()));
    }));

  test("without TRUST_PROXY an X-Forwarded-For header changes nothing", async () => {
    const match = uniqueMatch("spoof");
    const url = `${capNode.url}/matches/${match}/events`;
    const held = [];
    for (let i = 0; i < STREAM_CAP; i++) held.push(await openSseFrom("127.0.0.5", url, { "x-forwarded-for": `198.51.100.${i}` }));
    await Promise.all(held.map((s) => expectAdmitted(s)));
    await expectStreamRefusal(await openSseFrom("127.0.0.5", url, { "x-forwarded-for": "198.51.100.99" }), { error: "rate_limited", retryAfterS: 5 });
    await Promise.all(held.map((s) => s.close()));
  });
});

describe("TRUST_PROXY=loopback", () => {
  test("clients behind the proxy are told apart by the right-most untrusted X-Forwarded-For entry, and cannot spoof it", async () => {
    const match = uniqueMatch("proxied");
    const url = `${proxiedNode.url}/matches/${match}/events`;
    const a1 = await openSseFrom("127.0.0.1", url, { "x-forwarded-for": "198.51.100.1" });
    const a2 = await openSseFrom("127.0.0.1", url, { "x-forwarded-for": "198.51.100.1" });
    await Promise.all([a1, a2].map((s) => expectAdmitted(s)));
    // The same client prepending a made-up address: the proxy appended the real one on the right.
    await expectStreamRefusal(await openSseFrom("127.0.0.1", url, { "x-forwarded-for": "203.0.113.66, 198.51.100.1" }), {
      error: "rate_limited",
      retryAfterS: 5,
    });
    const b = await openSseFrom("127.0.0.1", url, { "x-forwarded-for": "198.51.100.2" });
    await expectAdmitted(b);
    // Another hop of loopback proxies is stepped over too.
    await expectStreamRefusal(await openSseFrom("127.0.0.1", url, { "x-forwarded-for": "198.51.100.1, 127.0.0.9" }), { error: "rate_limited", retryAfterS: 5 });
    // With no header the proxy's own address is the client (it has its own allowance).
    const direct = await openSseFrom("127.0.0.1", url);
    await expectAdmitted(direct);
    await Promise.all([a1, a2, b, direct].map((s) => s.close()));
  });
});

describe("STREAM_RATE_PER_ADDRESS", () => {
  test(`after a burst of ${STREAM_BURST} new streams, more are refused with Retry-After until the bucket refills`, async () => {
    const match = uniqueMatch("rate");
    const url = `${rateNode.url}/matches/${match}/events`;
    const before = await limited(rateNode, "stream_rate");
    for (let i = 0; i < STREAM_BURST; i++) {
      const s = await openSseFrom("127.0.0.6", url);
      await expectAdmitted(s);
      await s.close();
    }
    // One token at 2/s is at most 500 ms away: Retry-After rounds up to whole seconds (1 s), and the
    // wait asked for is that, plus jitter.
    const refused = await expectStreamRefusal(await openSseFrom("127.0.0.6", url), { error: "rate_limited", retryAfterS: 1 });
    expect(refused.message).toContain("new streams");
    expect(await limited(rateNode, "stream_rate")).toBe(before + 1);
    // Another address has its own bucket.
    const other = await openSseFrom("127.0.0.7", url);
    await expectAdmitted(other);
    await other.close();
    // After the advertised wait, the first address gets in again.
    await Bun.sleep(1000);
    const later = await openSseFrom("127.0.0.6", url);
    await expectAdmitted(later);
    await later.close();
  });
});

describe("PUBLISH_RATE", () => {
  test("with authorization off, publishes are counted per address", async () => {
    const match = uniqueMatch("pub");
    const before = await limited(rateNode, "publish_rate");
    for (let i = 0; i < PUBLISH_BURST; i++) expect((await publishFrom("127.0.0.8", rateNode.url, match, { type: "goal" })).status).toBe(201);
    const refused = await refusalOf(await publishFrom("127.0.0.8", rateNode.url, match, { type: "goal" }));
    expect(refused).toEqual({ status: 429, error: "rate_limited", retryAfter: "1" });
    expect(await limited(rateNode, "publish_rate")).toBe(before + 1);
    expect((await publishFrom("127.0.0.9", rateNode.url, match, { type: "goal" })).status).toBe(201);
  });

  test("with authorization on, publishes are counted per token: one address, two tokens, two allowances", async () => {
    const match = uniqueMatch("tok");
    const [tokenA, tokenB] = await Promise.all([hsToken({ publish: "*", extra: { jti: "a" } }), hsToken({ publish: "*", extra: { jti: "b" } })]);
    const withToken = (t: string) => ({ authorization: `Bearer ${t}` });
    for (let i = 0; i < PUBLISH_BURST; i++) {
      expect((await publishFrom("127.0.0.10", authNode.url, match, { type: "goal" }, withToken(tokenA))).status).toBe(201);
    }
    expect((await refusalOf(await publishFrom("127.0.0.10", authNode.url, match, { type: "goal" }, withToken(tokenA)))).status).toBe(429);
    // The same token from another address is the same publisher: still refused.
    expect((await refusalOf(await publishFrom("127.0.0.11", authNode.url, match, { type: "goal" }, withToken(tokenA)))).status).toBe(429);
    expect((await publishFrom("127.0.0.10", authNode.url, match, { type: "goal" }, withToken(tokenB))).status).toBe(201);
    expect(await limited(authNode, "publish_rate")).toBe(2);
  });
});

describe("sizes", () => {
  test(`a request head over MAX_HEADER_BYTES=${MAX_HEADER_BYTES} is 431 JSON (a stream's over its own, larger line); over Bun's own ${BUN_DEFAULT_MAX_HEADER_BYTES} a bare 431`, async () => {
    const before = await limited(rateNode, "header_bytes");
    const tooLargeBefore = await rejected(rateNode, "too_large");
    const big = { "x-filler": "y".repeat(MAX_HEADER_BYTES) };
    for (const path of ["/readyz", "/no-such-path"]) {
      const answer = await refusalOf(await answerFrom("127.0.0.12", `${rateNode.url}${path}`, { headers: big }));
      expect({ path, ...answer }).toEqual({ path, status: 431, error: "headers_too_large", retryAfter: null });
    }
    // Stream requests may carry a head as large as their longest resume needs (a few KB for
    // MAX_MATCHES_PER_STREAM=4): past that line they are refused the same way, below it they stream.
    const huger = { "x-filler": "y".repeat(STREAM_FILLER_OVER_ITS_LINE) };
    const stream = await refusalOf(await answerFrom("127.0.0.12", `${rateNode.url}/matches/m1/events`, { headers: huger }));
    expect(stream).toEqual({ status: 431, error: "headers_too_large", retryAfter: null });
    const streamFits = await answerFrom("127.0.0.12", `${rateNode.url}/matches/m1/events`, { headers: big });
    await expectAdmitted(streamFits);
    await streamFits.close();
    // A long query string counts as head bytes too.
    const longQuery = await refusalOf(await answerFrom("127.0.0.12", `${rateNode.url}/events?match=${"a".repeat(STREAM_FILLER_OVER_ITS_LINE)}`));
    expect(longQuery.status).toBe(431);
    expect(await limited(rateNode, "header_bytes")).toBe(before + 4);
    expect(await rejected(rateNode, "too_large")).toBe(tooLargeBefore + 4);
    // Just under the line is served.
    const fits = await answerFrom("127.0.0.12", `${rateNode.url}/readyz`, { headers: { "x-filler": "y".repeat(MAX_HEADER_BYTES - 200) } });
    expect(fits.status).toBe(200);

    const huge = await answerFrom("127.0.0.12", `${rateNode.url}/readyz`, { headers: { "x-filler": "y".repeat(BUN_DEFAULT_MAX_HEADER_BYTES + 1) } });
    await huge.until(() => huge.isEnded, 5000, "Bun's own refusal");
    expect(huge.status).toBe(431);
  });

  test(`a body over MAX_BODY_BYTES=${MAX_BODY_BYTES} is 413 JSON, counted as body_bytes`, async () => {
    const before = await limited(rateNode, "body_bytes");
    const answer = await refusalOf(await publishFrom("127.0.0.13", rateNode.url, uniqueMatch("body"), { type: "goal", data: "z".repeat(MAX_BODY_BYTES) }));
    expect(answer).toEqual({ status: 413, error: "too_large", retryAfter: null });
    expect(await limited(rateNode, "body_bytes")).toBe(before + 1);
  });

  test(`a multiplexed stream of more than MAX_MATCHES_PER_STREAM=${MAX_MATCHES} matches is 413 JSON, counted as matches_per_stream`, async () => {
    const before = await limited(rateNode, "matches_per_stream");
    const matches = Array.from({ length: MAX_MATCHES + 1 }, (_, i) => `match=m${i}`).join("&");
    const answer = await refusalOf(await requestFrom("127.0.0.14", `${rateNode.url}/events?${matches}`, { headers: { connection: "close" } }));
    expect(answer).toEqual({ status: 413, error: "too_many_matches", retryAfter: null });
    expect(await limited(rateNode, "matches_per_stream")).toBe(before + 1);
    const fits = await openSseFrom("127.0.0.15", `${rateNode.url}/events?${Array.from({ length: MAX_MATCHES }, (_, i) => `match=m${i}`).join("&")}`);
    await expectAdmitted(fits);
    await fits.close();
  });
});

describe("JSON depth", () => {
  const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

  test(`an event nesting more than ${MAX_JSON_DEPTH} levels is 400, stores nothing, counted as json_depth; ${MAX_JSON_DEPTH} levels are accepted`, async () => {
    const match = uniqueMatch("deep");
    const before = await limited(capNode, "json_depth");
    const post = (body: string) =>
      requestFrom("127.0.0.16", `${capNode.url}/matches/${match}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "close" },
        body,
      });
    // The body object is one level; its data adds the rest.
    for (const depth of [MAX_JSON_DEPTH, 5000]) {
      const answer = await refusalOf(await post(`{"type":"goal","data":${nested(depth)}}`));
      expect({ depth, ...answer }).toEqual({ depth, status: 400, error: "invalid_event", retryAfter: null });
    }
    const stateAnswer = await refusalOf(await post(`{"type":"goal","state":${'{"a":'.repeat(MAX_JSON_DEPTH)}1${"}".repeat(MAX_JSON_DEPTH)}}`));
    expect(stateAnswer.status).toBe(400);
    expect(await limited(capNode, "json_depth")).toBe(before + 3);
    expect((await fetch(`${capNode.url}/matches/${match}`)).status).toBe(404);
    const fits = await post(`{"type":"goal","data":${nested(MAX_JSON_DEPTH - 1)}}`);
    await fits.until(() => fits.isEnded, 5000, "the answer");
    expect(fits.status).toBe(201);
  });
});

describe("HEAD on a stream URL", () => {
  test("is answered with the stream's headers and opens no stream, trailing slash or not (it used to leak one each)", async () => {
    const baseline = await openOnNode(capNode);
    const host = new URL(capNode.url).host;
    for (const target of ["/matches/h1/events/", "/matches/h1/events", "/events/?match=h1", "/events?match=h1", "//matches//h1//events//"]) {
      const conns = await Promise.all(Array.from({ length: STREAM_CAP + 1 }, () => sendRaw(capNode.url, [`HEAD ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`])));
      for (const c of conns) {
        await c.until(() => c.status > 0, 5000, `an answer to HEAD ${target}`);
        expect({ target, status: c.status, type: c.headers.get("content-type") }).toEqual({ target, status: 200, type: "text/event-stream; charset=utf-8" });
      }
      expect(await openOnNode(capNode)).toBe(baseline);
      await Promise.all(conns.map((c) => c.close()));
    }
    expect(await openOnNode(capNode)).toBe(baseline);
  });
});

describe("metrics", () => {
  test("every limit and limiter is exposed from the first scrape", async () => {
    for (const limit of LIMIT_NAMES) {
      expect(await limited(authNode, limit)).toBeGreaterThanOrEqual(0);
    }
    for (const limiter of LIMITERS) {
      expect(await metricValue(capNode.url, "touchline_limiter_keys", { limiter })).toBeGreaterThanOrEqual(0);
      expect(await metricValue(capNode.url, "touchline_limiter_evictions_total", { limiter })).toBe(0);
    }
  });

  test("with every stream closed, no address is left holding a slot", async () => {
    await waitFor(async () => (await metricValue(capNode.url, "touchline_limiter_keys", { limiter: "open_streams" })) === 0, 5000, "open_streams keys 0");
    expect(await openOnNode(capNode)).toBe(0);
  });
});
