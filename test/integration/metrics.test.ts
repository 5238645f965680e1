/**
 * Issue 4, metrics: scrapes `GET /metrics` of a running node, parses the whole exposition with the strict
 * Prometheus text parser (plus the naming conventions), and checks that each figure moves by exactly
 * what the test did between two scrapes: streams opening and closing, events published and delivered,
 * the delivery latency histogram, replays from memory and from JetStream, a client that never reads
 * being cut off, and refused requests.
 *
 * The node runs alone, so it owns every match and nothing else moves its counters while a test runs.
 *
 *   node_modules/.bin/bun test test/integration/metrics.test.ts
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startNats, startNode, waitFor, waitForClusterSize, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { conventionProblems, parsePrometheus, sampleValue, type ParsedMetrics, type SampleLabels } from "../helpers/promParse.ts";
import { getJson, publish, publishConcurrently, publishOk, uniqueMatch, untilLatest } from "./touchlineApi.ts";
import { DELIVERY_LATENCY_BUCKETS_SECONDS, PUBLISH_RESULTS, REJECT_REASONS, REPLAY_SOURCES, STREAM_CLOSE_REASONS } from "../../src/telemetry/nodeMetrics.ts";

setDefaultTimeout(30_000);

/** Small, so the client that never reads is cut off after a few MB rather than tens. */
const CLIENT_BUFFER_BYTES = 65_536;
/** The smallest window the node accepts, so a resume from a little way back is read from JetStream. */
const WINDOW_EVENTS = 16;
/** Match actors outlive the whole file, so owned_matches changes only when ownership moves. */
const ACTOR_IDLE = "5m";
const NODE_ENV = { CLIENT_BUFFER_BYTES: String(CLIENT_BUFFER_BYTES), WINDOW_EVENTS: String(WINDOW_EVENTS), ACTOR_IDLE };
const PREFIX = "touchline_";
const PROMETHEUS_TEXT = "text/plain; version=0.0.4";

/** What issue 4 asks the node to expose; each must be there from the first scrape. */
const CATALOGUE = [
  "touchline_streams_open",
  "touchline_streams_opened_total",
  "touchline_streams_closed_total",
  "touchline_slow_clients_cut_total",
  "touchline_events_published_total",
  "touchline_events_delivered_total",
  "touchline_delivery_latency_seconds",
  "touchline_replay_requests_total",
  "touchline_replayed_events_total",
  "touchline_owned_matches",
  "touchline_upstream_feeds",
  "touchline_ownership_moves_total",
  "touchline_nats_connected",
  "touchline_event_loop_lag_seconds",
  "touchline_rejected_total",
  "touchline_build_info",
  "process_resident_memory_bytes",
  "process_cpu_seconds_total",
  "process_open_fds",
  "process_max_fds",
  "process_start_time_seconds",
] as const;

/**
 * About 1 KB per event. The client that never reads is cut once its unsent bytes pass the cap, after
 * the kernel buffers (up to ~4 MB on loopback) are full, so a few MB must flow. A client that does read
 * must never hold the cap's worth unsent: events queued for one flush pass all count, so a burst (the
 * concurrent publishes, and what arrives during a pass's coalescing wait) stays well under 64 KB.
 */
const COMMENT_TEXT = "A line of commentary, repeated so that each event weighs about one kilobyte on the wire. ".repeat(11);
const SLOW_BATCH = 500;
const SLOW_PUBLISHERS = 8;
/** Give up (and fail) if the cut has not come after this much per stream: kernel buffers plus the cap are far less. */
const SLOW_MAX_BYTES = 24 * 1024 * 1024;

const MOVE_TIMEOUT_MS = 15_000;
const MOVE_POLL_MS = 100;

let nats: NatsFixture;
let node: NodeFixture;
/** Joins for the last test only, to move ownership. */
let second: NodeFixture | undefined;

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url, env: NODE_ENV });
}, 30_000);

afterAll(async () => {
  await second?.kill();
  await node?.kill();
  await nats?.stop();
});

/** One scrape: the whole text must parse (any malformed line throws) and follow the conventions. */
async function scrape(of: NodeFixture = node): Promise<ParsedMetrics> {
  const res = await fetch(`${of.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith(PROMETHEUS_TEXT);
  const parsed = parsePrometheus(await res.text());
  expect(conventionProblems(parsed, PREFIX)).toEqual([]);
  return parsed;
}

/** A sample that must be exposed with exactly these labels. */
function value(parsed: ParsedMetrics, name: string, labels: SampleLabels = {}): number {
  const v = sampleValue(parsed, name, labels);
  if (v === undefined) throw new Error(`${name}${JSON.stringify(labels)} is not exposed`);
  return v;
}

/** How much each sample moved between two scrapes. */
function changeBetween(before: ParsedMetrics, after: ParsedMetrics) {
  return (name: string, labels: SampleLabels = {}): number => value(after, name, labels) - value(before, name, labels);
}

async function streamsOpenIs(n: number): Promise<void> {
  await waitFor(async () => value(await scrape(), "touchline_streams_open") === n, 10_000, `touchline_streams_open = ${n}`);
}

const matchUrl = (match: string) => `${node.url}/matches/${match}/events`;

/** Delivery latency buckets by bound, +Inf last. */
function latencyBuckets(parsed: ParsedMetrics): number[] {
  return [...DELIVERY_LATENCY_BUCKETS_SECONDS, Infinity].map((le) =>
    value(parsed, "touchline_delivery_latency_seconds_bucket", { le: le === Infinity ? "+Inf" : String(le) }),
  );
}

test("the exposition parses whole, follows the conventions, and shows every catalogued series from the start", async () => {
  const parsed = await scrape();
  for (const name of CATALOGUE) expect(parsed.has(name)).toBe(true);
  expect(parsed.get("touchline_delivery_latency_seconds")?.type).toBe("histogram");
  expect(parsed.get("touchline_streams_open")?.type).toBe("gauge");
  // Labelled series with a fixed set of values show at 0 before anything happens (rate() and alerts need them).
  for (const reason of STREAM_CLOSE_REASONS) expect(value(parsed, "touchline_streams_closed_total", { reason })).toBeGreaterThanOrEqual(0);
  for (const result of PUBLISH_RESULTS) expect(value(parsed, "touchline_events_published_total", { result })).toBeGreaterThanOrEqual(0);
  for (const source of REPLAY_SOURCES) expect(value(parsed, "touchline_replay_requests_total", { source })).toBeGreaterThanOrEqual(0);
  for (const reason of REJECT_REASONS) expect(value(parsed, "touchline_rejected_total", { reason })).toBeGreaterThanOrEqual(0);
  expect(value(parsed, "touchline_nats_connected")).toBe(1);
  const lag = value(parsed, "touchline_event_loop_lag_seconds");
  expect(lag).toBeGreaterThanOrEqual(0);
  expect(lag).toBeLessThan(60);
  expect(value(parsed, "touchline_upstream_feeds")).toBe(0); // alone, it proxies nobody
});

test("process metrics are this node's own figures, and build info names package.json's version", async () => {
  const parsed = await scrape();
  const version = (JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "package.json"), "utf8")) as { version: string }).version;
  expect(value(parsed, "touchline_build_info", { version })).toBe(1);
  expect(parsed.get("touchline_build_info")?.samples).toHaveLength(1);
  // The node's own descriptors (its NATS connection, its listening socket...), as the kernel lists them.
  const open = value(parsed, "process_open_fds");
  expect(open).toBeGreaterThan(2);
  if (existsSync(`/proc/${node.proc.pid}/fd`)) expect(Math.abs(readdirSync(`/proc/${node.proc.pid}/fd`).length - open)).toBeLessThanOrEqual(4);
  expect(value(parsed, "process_max_fds")).toBeGreaterThanOrEqual(value(parsed, "process_open_fds"));
  expect(value(parsed, "process_resident_memory_bytes")).toBeGreaterThan(10 * 1024 * 1024);
  expect(value(parsed, "process_cpu_seconds_total")).toBeGreaterThan(0);
  const start = value(parsed, "process_start_time_seconds");
  expect(start).toBeLessThanOrEqual(Date.now() / 1000);
  expect(start).toBeGreaterThan(Date.now() / 1000 - 600);
});

/** The metric names in the first column of the metrics table of docs/operators.md, "Operations". */
function metricsInReadme(): string[] {
  const readme = readFileSync(join(import.meta.dir, "..", "..", "docs", "operators.md"), "utf8");
  const operations = readme.slice(readme.indexOf("\n## Operations"), readme.indexOf("\n## ", readme.indexOf("\n## Operations") + 1));
  return [...operations.matchAll(/^\| `((?:touchline|process)_[a-z0-9_]+)` \|/gm)].map((m) => m[1]!);
}

test("the metrics table of docs/operators.md lists exactly the families the node exposes", async () => {
  const exposed = [...(await scrape()).keys()].sort();
  expect(metricsInReadme().sort()).toEqual(exposed);
});

test("streams: open and opened rise by the streams opened (a multiplexed one counts once) and fall back as clients leave", async () => {
  const [a, b] = [uniqueMatch("m-open"), uniqueMatch("m-open")];
  const before = await scrape();
  const base = value(before, "touchline_streams_open");

  const streams = await Promise.all([openSse(matchUrl(a!)), openSse(matchUrl(a!)), openSse(matchUrl(b!)), openSse(`${node.url}/events?match=${a}&match=${b}`)]);
  await Promise.all(streams.map((s, i) => s.untilEvents(i === 3 ? 2 : 1))); // a snapshot per match
  const open = await scrape();
  const opened = changeBetween(before, open);
  expect(value(open, "touchline_streams_open")).toBe(base + 4);
  expect(opened("touchline_streams_opened_total")).toBe(4);
  for (const reason of STREAM_CLOSE_REASONS) expect(opened("touchline_streams_closed_total", { reason })).toBe(0);

  await Promise.all(streams.map((s) => s.close()));
  await streamsOpenIs(base);
  const closed = changeBetween(open, await scrape());
  expect(closed("touchline_streams_closed_total", { reason: "client" })).toBe(4);
  for (const reason of STREAM_CLOSE_REASONS.filter((r) => r !== "client")) expect(closed("touchline_streams_closed_total", { reason })).toBe(0);
  expect(closed("touchline_streams_opened_total")).toBe(0);
  expect(closed("touchline_slow_clients_cut_total")).toBe(0);
});

test("events: published rises by the publishes, delivered and the latency histogram's count by publishes x subscribers", async () => {
  const PUBLISHES = 20;
  const match = uniqueMatch("m-flow");
  const other = uniqueMatch("m-flow-other");
  await untilLatest(node.url, match, await publishOk(node.url, match, { type: "kickoff" }));
  // Three streams on the match, one of them multiplexed with a match that stays quiet.
  const subscribers = await Promise.all([openSse(matchUrl(match)), openSse(matchUrl(match)), openSse(`${node.url}/events?match=${match}&match=${other}`)]);
  await Promise.all(subscribers.map((s, i) => s.untilEvents(i === 2 ? 2 : 1)));
  const before = await scrape();

  for (let i = 0; i < PUBLISHES; i++) await publishOk(node.url, match, { type: "tick", data: { i } });
  // A repeat of a key stores nothing and reaches nobody.
  const keyed = await publish(node.url, match, { type: "goal", key: `k-${match}` });
  const repeat = await publish(node.url, match, { type: "goal", key: `k-${match}` });
  expect([keyed.status, repeat.status]).toEqual([201, 200]);
  const events = PUBLISHES + 1;
  await Promise.all(subscribers.map((s) => s.until(() => s.matchEvents.length >= events, 10_000, `${events} events`)));
  const after = await scrape();
  const moved = changeBetween(before, after);
  const deliveries = events * subscribers.length;

  expect(moved("touchline_events_published_total", { result: "stored" })).toBe(events);
  expect(moved("touchline_events_published_total", { result: "duplicate" })).toBe(1);
  expect(moved("touchline_events_delivered_total")).toBe(deliveries);
  expect(moved("touchline_delivery_latency_seconds_count")).toBe(deliveries);
  const latencySum = moved("touchline_delivery_latency_seconds_sum");
  expect(latencySum).toBeGreaterThanOrEqual(0);
  expect(latencySum / deliveries).toBeLessThan(5); // a mean in seconds, not milliseconds
  // The buckets moved cumulatively too, and +Inf moved with the count.
  const bucketsBefore = latencyBuckets(before);
  const bucketMoves = latencyBuckets(after).map((v, i) => v - bucketsBefore[i]!);
  for (let i = 1; i < bucketMoves.length; i++) expect(bucketMoves[i]!).toBeGreaterThanOrEqual(bucketMoves[i - 1]!);
  expect(bucketMoves.at(-1)).toBe(deliveries);
  expect(value(after, "touchline_owned_matches")).toBeGreaterThanOrEqual(1);
  expect(moved("touchline_replay_requests_total", { source: "memory" })).toBe(0);

  await Promise.all(subscribers.map((s) => s.close()));
});

/** Publishes `count` events to a fresh match (or to `match`) and waits until the node has them all. */
async function matchWithEvents(prefix: string, count: number, match = uniqueMatch(prefix)): Promise<{ match: string; ids: string[] }> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await publishOk(node.url, match, { type: "tick", data: { i } }));
  await untilLatest(node.url, match, ids.at(-1)!);
  return { match, ids };
}

async function resume(match: string, lastEventId: string, expected: number): Promise<SseConnection> {
  const s = await openSse(matchUrl(match), { headers: { "last-event-id": lastEventId } });
  await s.until(() => s.matchEvents.length >= expected, 10_000, `${expected} replayed events`);
  expect(s.snapshots).toHaveLength(0);
  expect(s.matchEvents).toHaveLength(expected);
  return s;
}

test("replay from memory: a resume with Last-Event-ID counts one request and the events it replayed", async () => {
  // Watched while its events are published, as a match whose clients reconnect was: a match nobody
  // watches is kept without an actor, and so without a window (actors/idleOwnedMatches.ts).
  const match = uniqueMatch("m-replay");
  const watcher = await openSse(matchUrl(match));
  const { ids } = await matchWithEvents("m-replay", 10, match);
  await watcher.until(() => watcher.lastEventId === ids.at(-1), 10_000, "the watcher's last event");
  await watcher.close();
  const before = await scrape();
  const fromThird = await resume(match, ids[2]!, ids.length - 3);
  // Up to date: nothing to replay, still a resume served from memory. The live event that follows shows it joined.
  const upToDate = await openSse(matchUrl(match), { headers: { "last-event-id": ids.at(-1)! } });
  const live = await publishOk(node.url, match, { type: "tick", data: { live: true } });
  for (const s of [fromThird, upToDate]) await s.until(() => s.lastEventId === live, 10_000, "the live event");
  expect(upToDate.events.map((e) => e.lastEventId)).toEqual([live]);
  const moved = changeBetween(before, await scrape());
  expect(moved("touchline_replay_requests_total", { source: "memory" })).toBe(2);
  expect(moved("touchline_replay_requests_total", { source: "jetstream" })).toBe(0);
  expect(moved("touchline_replay_requests_total", { source: "snapshot" })).toBe(0);
  expect(moved("touchline_replayed_events_total")).toBe(ids.length - 3);
  // Replayed events are not deliveries of live events; the live one reached both.
  expect(moved("touchline_events_delivered_total")).toBe(2);
  await Promise.all([fromThird.close(), upToDate.close()]);
});

test("replay from JetStream: every resumer served by a read counts, with every event it was sent", async () => {
  const EVENTS = WINDOW_EVENTS * 3;
  const { match, ids } = await matchWithEvents("m-history", EVENTS);
  const before = await scrape();
  // Both are older than the window; they may well share one JetStream read.
  const FROM = [0, 5];
  const resumers = await Promise.all(FROM.map((i) => resume(match, ids[i]!, EVENTS - 1 - i)));
  for (const [k, s] of resumers.entries()) expect(s.matchEvents.map((e) => e.lastEventId)).toEqual(ids.slice(FROM[k]! + 1));
  const moved = changeBetween(before, await scrape());
  expect(moved("touchline_replay_requests_total", { source: "jetstream" })).toBe(FROM.length);
  expect(moved("touchline_replay_requests_total", { source: "memory" })).toBe(0);
  expect(moved("touchline_replayed_events_total")).toBe(FROM.reduce((sum, i) => sum + EVENTS - 1 - i, 0));
  await Promise.all(resumers.map((s) => s.close()));
});

test("refusals: bad publishes and a bad stream request count as bad_request, and store nothing", async () => {
  const match = uniqueMatch("m-bad");
  const before = await scrape();
  const post = (body: string, contentType = "application/json") => fetch(matchUrl(match), { method: "POST", headers: { "content-type": contentType }, body });
  const statuses = [
    (await post("{not json")).status,
    (await post(JSON.stringify({ type: "snapshot" }))).status, // reserved for the server
    (await post(JSON.stringify({ type: "goal" }), "text/plain")).status,
    (await fetch(`${node.url}/matches/bad!match/events`)).status,
  ];
  expect(statuses).toEqual([400, 400, 415, 400]);
  const moved = changeBetween(before, await scrape());
  expect(moved("touchline_rejected_total", { reason: "bad_request" })).toBe(statuses.length);
  for (const reason of REJECT_REASONS.filter((r) => r !== "bad_request")) expect(moved("touchline_rejected_total", { reason })).toBe(0);
  for (const result of PUBLISH_RESULTS) expect(moved("touchline_events_published_total", { result })).toBe(0);
  expect(moved("touchline_streams_opened_total")).toBe(0);
});

test("a client that never reads is cut off once (slow), while a reading one keeps its stream", async () => {
  const match = uniqueMatch("m-slow");
  await untilLatest(node.url, match, await publishOk(node.url, match, { type: "kickoff" }));
  const base = value(await scrape(), "touchline_streams_open");
  const reader = await openSse(matchUrl(match));
  await reader.untilEvents(1);
  // Sends its request and stops reading at once: the kernel buffers fill, then the node's.
  const stalled = await openSse(matchUrl(match), { paused: true, waitForHead: false });
  await streamsOpenIs(base + 2);
  const before = await scrape();

  let published = 0;
  let cut = 0;
  while (cut === 0) {
    if (published * COMMENT_TEXT.length > SLOW_MAX_BYTES) throw new Error(`no cut after ${published} events of ${COMMENT_TEXT.length} bytes`);
    await publishConcurrently(node.url, match, SLOW_BATCH, SLOW_PUBLISHERS, (i) => ({ type: "comment", data: { i, text: COMMENT_TEXT } }));
    published += SLOW_BATCH;
    cut = changeBetween(before, await scrape())("touchline_slow_clients_cut_total");
  }
  await reader.until(() => reader.matchEvents.length >= published, 15_000, `${published} events at the reader`);
  await streamsOpenIs(base + 1);
  const moved = changeBetween(before, await scrape());
  expect(moved("touchline_slow_clients_cut_total")).toBe(1);
  expect(moved("touchline_streams_closed_total", { reason: "slow" })).toBe(1);
  for (const reason of STREAM_CLOSE_REASONS.filter((r) => r !== "slow")) expect(moved("touchline_streams_closed_total", { reason })).toBe(0);
  expect(moved("touchline_events_published_total", { result: "stored" })).toBe(published);
  expect(reader.isEnded).toBe(false);
  console.log(
    `metrics: the client that never read was cut off after ${published} events of ${COMMENT_TEXT.length} bytes (${((published * COMMENT_TEXT.length) / 1e6).toFixed(1)} MB)`,
  );

  stalled.destroy();
  await reader.close();
  await streamsOpenIs(base);
});

test("ownership: when a second node joins, moves out count on this node and moves in on the other, matching owned_matches", async () => {
  // Fresh matches with events, so the newcomer takes some of them whatever the ring's split.
  const fresh = await Promise.all(Array.from({ length: 12 }, () => matchWithEvents("m-own", 1)));
  const before = await scrape();
  const ownedBefore = value(before, "touchline_owned_matches");
  expect(ownedBefore).toBeGreaterThanOrEqual(fresh.length);
  expect(value(before, "touchline_upstream_feeds")).toBe(0);

  second = await startNode({ natsUrl: nats.url, env: NODE_ENV });
  await waitForClusterSize([node, second], 2);
  // Every match with events that the ring now gives the newcomer (it starts their actors as it learns
  // of them: from its copy of the index when it joins, or as their entries reach it, at most a second later).
  let listed: string[] = [];
  await waitFor(
    async () => {
      listed = (await getJson<{ matches: { match: string }[] }>(`${second!.url}/matches?limit=1000`)).json.matches.map((m) => m.match);
      return fresh.every(({ match }) => listed.includes(match));
    },
    5_000,
    "the newcomer lists every fresh match",
  );
  const owners = await Promise.all(listed.map(async (match) => (await getJson<{ owner: string }>(`${second!.url}/cluster/owner/${match}`)).json.owner));
  const taken = owners.filter((o) => o === second!.nodeId).length;
  expect(taken).toBeGreaterThanOrEqual(1);

  // Owned matches change by moves in minus moves out on each node, whatever the order moves happen in
  // (an owner still taking its lease when `before` was read counts in here later, and owns one more).
  let figures: Record<string, number> = {};
  const settled = async (): Promise<boolean> => {
    const here = await scrape();
    const there = await scrape(second!);
    const change = changeBetween(before, here);
    figures = {
      outHere: change("touchline_ownership_moves_total", { direction: "out" }),
      inHere: change("touchline_ownership_moves_total", { direction: "in" }),
      ownedChangeHere: value(here, "touchline_owned_matches") - ownedBefore,
      feedsHere: value(here, "touchline_upstream_feeds"),
      inThere: value(there, "touchline_ownership_moves_total", { direction: "in" }),
      outThere: value(there, "touchline_ownership_moves_total", { direction: "out" }),
      ownedThere: value(there, "touchline_owned_matches"),
    };
    const f = figures as Record<"outHere" | "inHere" | "ownedChangeHere" | "inThere" | "outThere" | "ownedThere", number>;
    return (
      f.ownedThere >= taken &&
      f.inThere - f.outThere === f.ownedThere &&
      f.outHere >= taken &&
      f.inHere - f.outHere === f.ownedChangeHere &&
      f.ownedChangeHere <= -taken
    );
  };
  const deadline = Date.now() + MOVE_TIMEOUT_MS;
  while (!(await settled())) {
    if (Date.now() > deadline) throw new Error(`ownership figures did not settle: ${JSON.stringify({ taken, ...figures })}`);
    await Bun.sleep(MOVE_POLL_MS);
  }
  // A join moves matches one way only: the newcomer gave nothing away.
  expect(figures.outThere).toBe(0);
  // Nobody here watches the matches this node gave away: their actors stopped with the move, rather than
  // following the new owner (a feed and a sync per match, for no one). A client here would start one.
  expect(figures.feedsHere).toBe(0);
  expect(value(await scrape(second), "touchline_nats_connected")).toBe(1);
});
