/**
 * Exact resume on one node: by `Last-Event-ID` and by `?lastEventId=`, from inside the in-memory window
 * and from older history in JetStream, with bad ids giving a snapshot, and the replay/live splice under
 * concurrent publishing (no gap, no duplicate).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { compositeOf, idOf, seqOf, tagOf } from "../helpers/eventIds.ts";
import { compareDelivery } from "./deliveryCheck.ts";
import { byId, metricValue, publishConcurrently, publishOk, seededRandom, uniqueMatch, untilLatest } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

/** The smallest window the node accepts, so that resuming from the 10th of 100 events must read JetStream. */
const WINDOW_EVENTS = 16;
/** Time to let a duplicate or stray event show up after the expected ones. */
const SETTLE_MS = 250;

const { node } = useNode({ env: { WINDOW_EVENTS: String(WINDOW_EVENTS) } });

const streamUrl = (match: string): string => `${node.url}/matches/${match}/events`;

async function publishSeries(match: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await publishOk(node.url, match, { type: "tick", data: { i }, state: { i } }));
  return ids;
}

function ids(s: SseConnection): string[] {
  return s.events.map((e) => e.lastEventId);
}

type ResumeVia = "header" | "query";

function resumeUrlAndHeaders(match: string, id: string, via: ResumeVia): [string, Record<string, string>] {
  return via === "header" ? [streamUrl(match), { "last-event-id": id }] : [`${streamUrl(match)}?lastEventId=${encodeURIComponent(id)}`, {}];
}

describe("resume from a known id", () => {
  for (const via of ["header", "query"] as const) {
    test(`by ${via === "header" ? "Last-Event-ID" : "?lastEventId="}: every later event once, in order, then live`, async () => {
      const match = uniqueMatch(`res-${via}`);
      const stored = await publishSeries(match, 12);
      const [url, headers] = resumeUrlAndHeaders(match, stored[4]!, via);
      const s = await openSse(url, { headers });
      await s.untilEvents(7);
      const live = [await publishOk(node.url, match, { type: "goal" }), await publishOk(node.url, match, { type: "goal" })];
      await s.untilEvents(9);
      await Bun.sleep(SETTLE_MS);
      await s.close();
      expect(s.snapshots).toEqual([]);
      expect(ids(s)).toEqual([...stored.slice(5), ...live]);
      expect(s.events.map((e) => e.type)).toEqual([...Array(7).fill("tick"), "goal", "goal"]);
    });
  }

  test("resuming from the latest id gives nothing until the next event", async () => {
    const match = uniqueMatch("res-latest");
    const stored = await publishSeries(match, 3);
    const s = await openSse(streamUrl(match), { headers: { "last-event-id": stored[2]! } });
    await Bun.sleep(SETTLE_MS);
    expect(s.events).toEqual([]);
    const next = await publishOk(node.url, match, { type: "goal" });
    await s.untilEvents(1);
    await Bun.sleep(SETTLE_MS);
    await s.close();
    expect(ids(s)).toEqual([next]);
  });

  test("an id without a tag (issued before ids carried one) is taken as the current log's: resumes exactly", async () => {
    const match = uniqueMatch("res-untagged");
    const stored = await publishSeries(match, 6);
    const s = await openSse(streamUrl(match), { headers: { "last-event-id": String(seqOf(stored[2]!)) } });
    await s.untilEvents(3);
    await Bun.sleep(SETTLE_MS);
    await s.close();
    expect(s.snapshots).toEqual([]);
    expect(ids(s)).toEqual(stored.slice(3));
  });

  test(`an id older than the in-memory window (WINDOW_EVENTS=${WINDOW_EVENTS}) replays exactly from JetStream`, async () => {
    const match = uniqueMatch("res-old");
    const stored = await publishSeries(match, 100);
    const fromJetStreamBefore = await metricValue(node.url, "touchline_replay_requests_total", { source: "jetstream" });
    const s = await openSse(streamUrl(match), { headers: { "last-event-id": stored[9]! } });
    await s.untilEvents(90);
    const live = await publishOk(node.url, match, { type: "goal" });
    await s.untilEvents(91);
    await Bun.sleep(SETTLE_MS);
    await s.close();
    expect(s.snapshots).toEqual([]);
    expect(ids(s)).toEqual([...stored.slice(10), live]);
    expect(await metricValue(node.url, "touchline_replay_requests_total", { source: "jetstream" })).toBeGreaterThan(fromJetStreamBefore);

    // Inside the window it is served from memory.
    const fromMemoryBefore = await metricValue(node.url, "touchline_replay_requests_total", { source: "memory" });
    const recent = await openSse(streamUrl(match), { headers: { "last-event-id": stored[95]! } });
    await recent.untilEvents(5);
    await Bun.sleep(SETTLE_MS);
    await recent.close();
    expect(ids(recent)).toEqual([...stored.slice(96), live]);
    expect(await metricValue(node.url, "touchline_replay_requests_total", { source: "memory" })).toBeGreaterThan(fromMemoryBefore);
  });

  test("many clients resuming at once from different old ids each get exactly their history", async () => {
    const match = uniqueMatch("res-many");
    const stored = await publishSeries(match, 80);
    const random = seededRandom(7);
    const starts = Array.from({ length: 30 }, () => Math.floor(random() * stored.length));
    const streams = await Promise.all(starts.map((i) => openSse(streamUrl(match), { headers: { "last-event-id": stored[i]! } })));
    await Promise.all(streams.map((s, k) => s.untilEvents(stored.length - 1 - starts[k]!)));
    await Bun.sleep(SETTLE_MS);
    await Promise.all(streams.map((s) => s.close()));
    for (const [k, s] of streams.entries()) expect(ids(s)).toEqual(stored.slice(starts[k]! + 1));
  });
});

describe("unknown or unparseable ids give a snapshot, never an error", () => {
  const bad: [string, (latest: string) => string][] = [
    ["an id beyond the latest", (latest) => idOf(seqOf(latest) + 1_000_000, tagOf(latest))],
    ["an id of another log incarnation (tag)", (latest) => idOf(seqOf(latest) - 1, `${tagOf(latest)}0`)],
    ["abc", () => "abc"],
    ["-1", () => "-1"],
    ["0", () => "0"],
    ["1.5", () => "1.5"],
    ["a very long number", () => "9".repeat(300)],
    ["a very long string", () => "x".repeat(2000)],
    [
      "a composite id",
      (latest) =>
        compositeOf(
          [
            ["a", 1],
            ["b", 2],
          ],
          tagOf(latest),
        ),
    ],
  ];
  for (const [name, badIdOf] of bad) {
    for (const via of ["header", "query"] as const) {
      test(`${name} (${via})`, async () => {
        const match = uniqueMatch("res-bad");
        const stored = await publishSeries(match, 3);
        await untilLatest(node.url, match, stored[2]!);
        const [url, headers] = resumeUrlAndHeaders(match, badIdOf(stored[2]!), via);
        const s = await openSse(url, { headers });
        expect(s.status).toBe(200);
        expect(s.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
        await s.untilEvents(1);
        const live = await publishOk(node.url, match, { type: "goal" });
        await s.untilEvents(2);
        await Bun.sleep(SETTLE_MS);
        await s.close();
        expect(s.events.map((e) => [e.type, e.lastEventId])).toEqual([
          ["snapshot", stored[2]!],
          ["goal", live],
        ]);
        expect(JSON.parse(s.events[0]!.data)).toEqual({ match, state: { i: 2 } });
      });
    }
  }
});

describe("the splice between replay and live", () => {
  test("subscribers resuming while a publisher publishes get no gap and no duplicate", async () => {
    const match = uniqueMatch("splice");
    const first = await publishOk(node.url, match, { type: "kickoff" });
    const acked: string[] = [first];
    const random = seededRandom(20261123);
    const total = 400;
    let publishing = true;
    // Resumers pick among ids already acknowledged, as a real client only knows ids it was sent.
    const publisher = publishConcurrently(
      node.url,
      match,
      total,
      2,
      (i) => ({ type: "tick", data: { i } }),
      (id) => acked.push(id),
    ).then((all) => {
      publishing = false;
      return all;
    });

    const connections: { from: string; stream: SseConnection }[] = [];
    const resumers = Array.from({ length: 10 }, async () => {
      while (publishing) {
        await Bun.sleep(Math.floor(random() * 60));
        // Sometimes the newest id (resume lands right at the live edge), sometimes an older one
        // (beyond the in-memory window, so JetStream is read while events keep coming).
        const pick = random() < 0.5 ? acked.length - 1 : Math.floor(random() * acked.length);
        // (acked is in acknowledgement order; with two publishers that is nearly, not exactly, id order)
        const from = acked[pick]!;
        connections.push({ from, stream: await openSse(streamUrl(match), { headers: { "last-event-id": from } }) });
      }
    });
    await Promise.all(resumers);
    const published = await publisher;
    const all = [first, ...published].sort(byId);
    expect(connections.length).toBeGreaterThan(20);
    // A connection that misses events never reaches its count: wait, then report what each one missed.
    await Promise.all(connections.map(({ from, stream }) => stream.untilEvents(all.filter((id) => seqOf(id) > seqOf(from)).length, 10_000).catch(() => {})));
    await Bun.sleep(SETTLE_MS);
    await Promise.all(connections.map((c) => c.stream.close()));
    const failures = connections
      .map(({ from, stream }) => ({
        from,
        ...compareDelivery(
          all.filter((id) => seqOf(id) > seqOf(from)),
          ids(stream),
        ),
      }))
      .filter((r) => !r.exact);
    expect({ connections: connections.length, failed: failures.length, firstFailures: failures.slice(0, 6) }).toEqual({
      connections: connections.length,
      failed: 0,
      firstFailures: [],
    });
  }, 60_000);
});
