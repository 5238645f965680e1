/**
 * `GET /matches/{match}/events` on a fresh connection: headers, `retry:` first with jitter, the snapshot,
 * live events in order, any Accept header, and heartbeats.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { dataOf, openSse } from "../helpers/sse.ts";
import { seqOf, tagOf } from "../helpers/eventIds.ts";
import { byId, getJson, publishConcurrently, publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

const HEARTBEAT_MS = 300;
const RETRY_MS = 1000;
const JITTER = 0.5;

const { node } = useNode({ env: { HEARTBEAT_MS: String(HEARTBEAT_MS), RETRY_MS: String(RETRY_MS) } });

const streamUrl = (match: string): string => `${node.url}/matches/${match}/events`;

describe("stream opening", () => {
  test("headers are exactly the contract's", async () => {
    const match = uniqueMatch("hdr");
    await publishOk(node.url, match, { type: "kickoff" });
    const s = await openSse(streamUrl(match));
    await s.untilEvents(1);
    await s.close();
    expect(s.status).toBe(200);
    expect(s.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(s.headers.get("cache-control")).toBe("no-cache, no-transform");
    expect(s.headers.get("x-accel-buffering")).toBe("no");
  });

  test("the first field is retry:, jittered within ±50% of RETRY_MS across streams", async () => {
    const match = uniqueMatch("retry");
    const streams = await Promise.all(Array.from({ length: 20 }, () => openSse(streamUrl(match))));
    await Promise.all(streams.map((s) => s.untilEvents(1)));
    await Promise.all(streams.map((s) => s.close()));
    const retries: number[] = [];
    for (const s of streams) {
      expect(s.bodyStart).toMatch(/^retry: \d+\n/);
      expect(s.retries.length).toBe(1);
      retries.push(s.retries[0]!);
    }
    for (const r of retries) {
      expect(r).toBeGreaterThanOrEqual(RETRY_MS * (1 - JITTER));
      expect(r).toBeLessThanOrEqual(RETRY_MS * (1 + JITTER));
    }
    // Jitter, not one value for everybody (20 equal draws would mean no jitter at all).
    expect(new Set(retries).size).toBeGreaterThan(1);
  });

  test("a fresh connection gets a snapshot whose id is the latest event and whose data is {match, state}", async () => {
    const match = uniqueMatch("snap");
    await publishOk(node.url, match, { type: "kickoff", state: { home: "A", away: "B", homeScore: 0 } });
    const latest = await publishOk(node.url, match, { type: "goal", data: { team: "home" }, state: { homeScore: 1 } });
    // The match is quiet (and the node has reported the event as the match's latest) before we connect.
    expect((await getJson<{ id: string }>(`${node.url}/matches/${match}`)).json.id).toBe(latest);
    await Bun.sleep(100);
    const s = await openSse(streamUrl(match));
    await s.untilEvents(1);
    // Nothing but the snapshot: no replay of the two events on a fresh connection.
    await Bun.sleep(200);
    await s.close();
    expect(s.events.map((e) => [e.type, e.lastEventId])).toEqual([["snapshot", latest]]);
    expect(JSON.parse(s.events[0]!.data)).toEqual({ match, state: { home: "A", away: "B", homeScore: 1 } });
  });

  test("connecting right after a publish: the snapshot plus what follows reach the latest event once, with consistent state", async () => {
    for (let round = 0; round < 30; round++) {
      const match = uniqueMatch("snaprace");
      await publishOk(node.url, match, { type: "kickoff", state: { a: 1 } });
      const latest = await publishOk(node.url, match, { type: "goal", state: { b: 2 } });
      const s = await openSse(streamUrl(match));
      await s.until(() => s.events.at(-1)?.lastEventId === latest, 5000, `event ${latest} in snapshot or live`);
      await Bun.sleep(100);
      await s.close();
      const [snapshot, ...rest] = s.events;
      expect(snapshot!.type).toBe("snapshot");
      // Whatever the snapshot covered, the live events continue from it: no gap, no duplicate.
      const state = JSON.parse(snapshot!.data).state as Record<string, unknown>;
      for (const e of rest) {
        expect(seqOf(e.lastEventId)).toBeGreaterThan(seqOf(snapshot!.lastEventId));
        expect(tagOf(e.lastEventId)).toBe(tagOf(snapshot!.lastEventId));
        Object.assign(state, dataOf(e).state as Record<string, unknown>);
      }
      expect(new Set(s.events.map((e) => e.lastEventId)).size).toBe(s.events.length);
      expect(s.events.at(-1)!.lastEventId).toBe(latest);
      expect(state).toEqual({ a: 1, b: 2 });
    }
  });

  test("a match with no events gets a snapshot without an id line and state {}", async () => {
    const match = uniqueMatch("empty");
    const s = await openSse(streamUrl(match));
    await s.untilEvents(1);
    await s.close();
    const snap = s.events[0]!;
    expect(snap.type).toBe("snapshot");
    expect(snap.lastEventId).toBe("");
    expect(s.bodyStart).not.toMatch(/^id:/m);
    expect(JSON.parse(snap.data)).toEqual({ match, state: {} });
  });

  for (const accept of ["*/*", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/json", null]) {
    test(`any Accept header gets the stream (${accept ?? "no Accept header"})`, async () => {
      const match = uniqueMatch("accept");
      const id = await publishOk(node.url, match, { type: "kickoff" });
      const s = await openSse(streamUrl(match), { headers: { accept } });
      await s.untilEvents(1);
      await s.close();
      expect(s.status).toBe(200);
      expect(s.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
      expect(s.events[0]!.type).toBe("snapshot");
      expect(s.events[0]!.lastEventId).toBe(id);
    });
  }
});

describe("live events", () => {
  test("arrive after the snapshot, in stored order, each with id, type and {match, data, ts, state?}", async () => {
    const match = uniqueMatch("live");
    const s = await openSse(streamUrl(match));
    await s.untilEvents(1);
    const startedAt = Date.now();
    const count = 60;
    const ids = await publishConcurrently(node.url, match, count, 4, (i) =>
      i % 2 === 0 ? { type: "goal", data: { i, text: `line ${i}` }, state: { last: i } } : { type: "card", data: { i } },
    );
    await s.untilEvents(1 + count);
    await Bun.sleep(200);
    await s.close();

    expect(s.events[0]!.type).toBe("snapshot");
    const live = s.events.slice(1);
    expect(live.map((e) => e.lastEventId)).toEqual([...ids].sort(byId));
    const indexById = new Map(ids.map((id, i) => [id, i]));
    for (const e of live) {
      const i = indexById.get(e.lastEventId)!;
      const payload = dataOf(e);
      if (i % 2 === 0) {
        expect(e.type).toBe("goal");
        expect(Object.keys(payload).sort()).toEqual(["data", "match", "state", "ts"]);
        expect(payload.state).toEqual({ last: i });
      } else {
        expect(e.type).toBe("card");
        expect(Object.keys(payload).sort()).toEqual(["data", "match", "ts"]);
      }
      expect(payload.match).toBe(match);
      expect(payload.data).toEqual(i % 2 === 0 ? { i, text: `line ${i}` } : { i });
      expect(payload.ts as number).toBeGreaterThanOrEqual(startedAt - 1000);
      expect(payload.ts as number).toBeLessThanOrEqual(Date.now());
    }
  });

  test("a stream sees only its own match", async () => {
    const mine = uniqueMatch("mine");
    const other = uniqueMatch("other");
    const s = await openSse(streamUrl(mine));
    await s.untilEvents(1);
    await publishOk(node.url, other, { type: "goal" });
    const id = await publishOk(node.url, mine, { type: "goal" });
    await s.untilEvents(2);
    await Bun.sleep(150);
    await s.close();
    expect(s.matchEvents.map((e) => e.lastEventId)).toEqual([id]);
  });
});

describe("heartbeats", () => {
  test(`an idle stream gets ': ping' about every HEARTBEAT_MS (${HEARTBEAT_MS} ms)`, async () => {
    const match = uniqueMatch("ping");
    const s = await openSse(streamUrl(match));
    await s.untilEvents(1);
    const openedAt = Date.now();
    await s.until(() => s.comments.length >= 3, HEARTBEAT_MS * 10, "three pings");
    await s.close();
    expect(s.comments.slice(0, 3)).toEqual(["ping", "ping", "ping"]);
    // The first ping comes once HEARTBEAT_MS passed without a write, not long after.
    expect(s.commentTimes[0]! - openedAt).toBeLessThan(HEARTBEAT_MS * 3);
    for (let i = 1; i < 3; i++) {
      const gap = s.commentTimes[i]! - s.commentTimes[i - 1]!;
      // Not spamming, and not so late that a proxy's idle timeout would fire.
      expect(gap).toBeGreaterThanOrEqual(HEARTBEAT_MS * 0.7);
      expect(gap).toBeLessThan(HEARTBEAT_MS * 3);
    }
    expect(s.bodyStart).toContain("\n: ping\n\n");
  });
});
