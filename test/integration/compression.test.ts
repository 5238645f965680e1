/**
 * Compression and short caching against a real node (src/http/compression.ts, src/http/caching.ts):
 * - `GET /matches?limit=100` with 100 matches is brotli- or gzip-encoded for a client that accepts it,
 *   decodes to the very JSON an identity client gets, and prints the ratio (COMPRESSION line);
 * - the page's files and /metrics are compressed; small answers are not;
 * - event streams are never compressed, whatever the client accepts, single or multiplexed;
 * - listings and match reads carry `Cache-Control: max-age` and an ETag, answer 304 to a matching
 *   If-None-Match (compressed or not), and a new event changes the ETag.
 */
import { beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { COMPRESS_MIN_BYTES } from "../../src/http/compression.ts";
import { LIST_MAX_AGE_S, MATCH_MAX_AGE_S } from "../../src/http/caching.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse } from "../helpers/sse.ts";
import { rawGet } from "../helpers/rawHttp.ts";
import { seededRandom } from "../helpers/seededRandom.ts";
import { waitFor } from "../helpers/cluster.ts";
import { publishOk } from "./touchlineApi.ts";

const MATCHES = 100;
const WEB_DIR = join(import.meta.dir, "..", "..", "src", "web");
const { node } = useNode();

const TEAMS = [
  "Arsenal",
  "Aston Villa",
  "Bournemouth",
  "Brentford",
  "Brighton",
  "Chelsea",
  "Crystal Palace",
  "Everton",
  "Fulham",
  "Ipswich Town",
  "Leicester City",
  "Liverpool",
  "Manchester City",
  "Manchester United",
  "Newcastle United",
  "Nottingham Forest",
  "Southampton",
  "Tottenham Hotspur",
  "West Ham United",
  "Wolverhampton",
  "Real Madrid",
  "Barcelona",
  "Atletico Madrid",
  "Bayern Munich",
  "Borussia Dortmund",
  "Inter",
  "Milan",
  "Juventus",
  "Napoli",
  "Paris Saint-Germain",
  "Benfica",
  "Porto",
  "Ajax",
  "PSV",
];
const STATUSES = ["scheduled", "live", "half-time", "full-time"];

function decode(body: Buffer, coding: string | undefined): string {
  if (coding === "br") return brotliDecompressSync(body).toString();
  if (coding === "gzip") return gunzipSync(body).toString();
  return body.toString();
}

beforeAll(async () => {
  // 100 matches shaped like the demo's (the football convention), as one batch.
  const random = seededRandom(14);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
  const items = Array.from({ length: MATCHES }, (_, i) => ({
    match: `cmp-${String(i).padStart(3, "0")}`,
    type: "kickoff",
    data: { text: "Kick-off" },
    state: {
      home: pick(TEAMS),
      away: pick(TEAMS),
      homeScore: Math.floor(random() * 4),
      awayScore: Math.floor(random() * 4),
      minute: Math.floor(random() * 95),
      status: pick(STATUSES),
      competition: pick(["Premier League", "La Liga", "Serie A", "Bundesliga", "Champions League"]),
      kickoff: new Date(Date.UTC(2026, 11, 5, 12 + Math.floor(random() * 9), pick([0, 15, 30, 45]))).toISOString(),
    },
  }));
  const res = await fetch(`${node.url}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(items) });
  expect(res.status).toBe(201);
  await waitFor(
    async () => ((await (await fetch(`${node.url}/matches?limit=${MATCHES}`)).json()) as { matches: unknown[] }).matches.length === MATCHES,
    10_000,
    "100 listed matches",
  );
});

test(`GET /matches?limit=${MATCHES} is compressed for clients that accept it and decodes to the same JSON`, async () => {
  const url = `${node.url}/matches?limit=${MATCHES}`;
  const plain = await rawGet(url);
  const gzip = await rawGet(url, { "accept-encoding": "gzip" });
  const br = await rawGet(url, { "accept-encoding": "br" });
  // A browser's header: both taken, gzip preferred for dynamic answers (cheaper per request).
  const browser = await rawGet(url, { "accept-encoding": "gzip, deflate, br, zstd" });
  expect(browser.headers["content-encoding"]).toBe("gzip");
  expect(plain.headers["content-encoding"]).toBeUndefined();
  expect(gzip.headers["content-encoding"]).toBe("gzip");
  expect(br.headers["content-encoding"]).toBe("br");
  for (const a of [plain, gzip, br]) {
    expect(a.status).toBe(200);
    expect(a.headers.vary).toContain("Accept-Encoding");
    expect(a.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(Number(a.headers["content-length"])).toBe(a.body.byteLength);
  }
  const json = plain.body.toString();
  expect((JSON.parse(json) as { matches: unknown[] }).matches).toHaveLength(MATCHES);
  // The listing may have moved between the requests only if something published: nothing does here.
  expect(decode(gzip.body, "gzip")).toBe(json);
  expect(decode(br.body, "br")).toBe(json);
  const ratio = (n: number) => (plain.body.byteLength / n).toFixed(1);
  console.log(
    `COMPRESSION GET /matches?limit=${MATCHES}: identity ${plain.body.byteLength} B, gzip ${gzip.body.byteLength} B (${ratio(gzip.body.byteLength)}x), br ${br.body.byteLength} B (${ratio(br.body.byteLength)}x)`,
  );
  expect(gzip.body.byteLength).toBeLessThan(plain.body.byteLength / 4);
  expect(br.body.byteLength).toBeLessThan(plain.body.byteLength / 4);
  // fetch (Bun's, a browser's) sends Accept-Encoding and decodes by itself.
  expect(await (await fetch(url)).text()).toBe(json);
});

test("the page's files and /metrics are compressed; small answers are not", async () => {
  for (const [path, file] of [
    ["/", "index.html"],
    ["/web/app.js", "app.js"],
    ["/web/style.css", "style.css"],
  ] as const) {
    const onDisk = readFileSync(join(WEB_DIR, file), "utf8");
    const a = await rawGet(`${node.url}${path}`, { "accept-encoding": "br, gzip" });
    expect({ path, status: a.status }).toEqual({ path, status: 200 });
    if (Buffer.byteLength(onDisk) >= COMPRESS_MIN_BYTES) {
      expect({ path, coding: a.headers["content-encoding"] }).toEqual({ path, coding: "br" });
      expect(a.body.byteLength).toBeLessThan(Buffer.byteLength(onDisk) / 2);
    }
    expect(decode(a.body, a.headers["content-encoding"])).toBe(onDisk);
    const g = await rawGet(`${node.url}${path}`, { "accept-encoding": "gzip" });
    expect(decode(g.body, g.headers["content-encoding"])).toBe(onDisk);
  }
  const metrics = await rawGet(`${node.url}/metrics`, { "accept-encoding": "gzip" });
  expect(metrics.headers["content-encoding"]).toBe("gzip");
  expect(decode(metrics.body, "gzip")).toContain("# TYPE touchline_streams_open gauge");
  const health = await rawGet(`${node.url}/healthz`, { "accept-encoding": "gzip, br" });
  expect(health.headers["content-encoding"]).toBeUndefined();
  expect(JSON.parse(health.body.toString()).ok).toBe(true);
});

test("event streams are never compressed, whatever the client accepts", async () => {
  const match = "cmp-000";
  for (const url of [`${node.url}/matches/${match}/events`, `${node.url}/events?match=${match}&match=cmp-001`]) {
    const s = await openSse(url, { headers: { "accept-encoding": "gzip, deflate, br, zstd" } });
    expect(s.status).toBe(200);
    expect(s.headers.get("content-encoding")).toBeNull();
    expect(s.headers.get("cache-control")).toBe("no-cache, no-transform");
    await s.untilEvents(url.includes("/events?") ? 2 : 1);
    expect(s.bodyStart).toStartWith("retry: ");
    expect(s.events[0]!.type).toBe("snapshot");
    const id = await publishOk(node.url, match, { type: "goal", data: { team: "home", text: "x".repeat(2 * COMPRESS_MIN_BYTES) } });
    await s.until(() => s.events.some((e) => e.type === "goal"), 5000, "the goal, in clear");
    expect(s.events.find((e) => e.type === "goal")!.data).toContain("x".repeat(2 * COMPRESS_MIN_BYTES));
    expect(id).toBeTruthy();
    await s.close();
  }
});

test("listings and match reads carry max-age and an ETag, and answer 304 to If-None-Match", async () => {
  for (const [path, maxAge] of [
    [`/matches?limit=${MATCHES}`, LIST_MAX_AGE_S],
    ["/matches/cmp-050", MATCH_MAX_AGE_S],
  ] as const) {
    const url = `${node.url}${path}`;
    for (const encoding of [{}, { "accept-encoding": "gzip, br" }] as Record<string, string>[]) {
      const first = await rawGet(url, encoding);
      expect(first.status).toBe(200);
      expect(first.headers["cache-control"]).toBe(`public, max-age=${maxAge}`);
      const etag = first.headers.etag!;
      expect(etag).toMatch(/^W\/"[0-9a-z]+"$/);
      const again = await rawGet(url, { ...encoding, "if-none-match": etag });
      expect({ path, status: again.status }).toEqual({ path, status: 304 });
      expect(again.body.byteLength).toBe(0);
      expect(again.headers.etag).toBe(etag);
      expect(again.headers["cache-control"]).toBe(`public, max-age=${maxAge}`);
      expect(again.headers.vary).toContain("Accept-Encoding");
    }
  }
  // A token makes it private (the listing may name private matches).
  const withToken = await rawGet(`${node.url}/matches?limit=5`, { cookie: "touchline_token=abc" });
  expect([200, 401]).toContain(withToken.status);
  if (withToken.status === 200) expect(withToken.headers["cache-control"]).toBe(`private, max-age=${LIST_MAX_AGE_S}`);
});

test("a new event changes the ETag: the old one gets a 200 with the new state", async () => {
  const url = `${node.url}/matches/cmp-060`;
  const before = await rawGet(url);
  await publishOk(node.url, "cmp-060", { type: "goal", state: { homeScore: 9 } });
  await waitFor(async () => (await rawGet(url)).headers.etag !== before.headers.etag, 5000, "the new state");
  const after = await rawGet(url, { "if-none-match": before.headers.etag! });
  expect(after.status).toBe(200);
  expect(after.headers.etag).not.toBe(before.headers.etag);
  expect(JSON.parse(after.body.toString()).state.homeScore).toBe(9);
  const listed = await rawGet(`${node.url}/matches?limit=${MATCHES}`);
  const list304 = await rawGet(`${node.url}/matches?limit=${MATCHES}`, { "if-none-match": listed.headers.etag! });
  expect(list304.status).toBe(304);
});
