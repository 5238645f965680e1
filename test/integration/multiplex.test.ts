/**
 * `GET /events?match=a&match=b`: one snapshot per match then live events of all, composite ids, exact
 * resume for every match by header or `lastEventId`, and the limits (too many matches, bad ids).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { dataOf, openSse, type ReceivedEvent, type SseConnection } from "../helpers/sse.ts";
import { commonTag, compositeOf, cursorOf, idOf, seqOf, tagOf } from "../helpers/eventIds.ts";
import { compareDelivery } from "./deliveryCheck.ts";
import { byId, publishConcurrently, publishOk, seededRandom, uniqueMatch, untilLatest } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

const MAX_MATCHES = 4;
const SETTLE_MS = 250;

const { node } = useNode({ env: { MAX_MATCHES_PER_STREAM: String(MAX_MATCHES) } });

const muxUrl = (matches: string[], extra = ""): string => `${node.url}/events?${matches.map((m) => `match=${m}`).join("&")}${extra}`;

/** A composite id `a:12,b:0@<tag>` as a map from match to its last seq (the form is checked exactly). */
function parseComposite(id: string): Map<string, number> {
  return cursorOf(id);
}

/** The id of `match`'s last event named by a composite id, as a single-match id `<seq>@<tag>`. */
function matchIdIn(id: string, match: string): string {
  return idOf(parseComposite(id).get(match)!, tagOf(id));
}

function matchOf(e: ReceivedEvent): string {
  return dataOf<{ match: string }>(e).match;
}

/** The per-match ids a multiplexed stream delivered (snapshots excluded), read from the composite ids. */
function idsByMatch(s: SseConnection, matches: string[]): Map<string, string[]> {
  const out = new Map(matches.map((m) => [m, [] as string[]]));
  for (const e of s.matchEvents) {
    const m = matchOf(e);
    out.get(m)!.push(matchIdIn(e.lastEventId, m));
  }
  return out;
}

describe("multiplexed stream", () => {
  test("one snapshot per match, then live events of all, with composite ids", async () => {
    const a = uniqueMatch("mxa");
    const b = uniqueMatch("mxb");
    const empty = uniqueMatch("mxe");
    const a1 = await publishOk(node.url, a, { type: "kickoff", state: { side: "a" } });
    const b1 = await publishOk(node.url, b, { type: "kickoff", state: { side: "b" } });
    await untilLatest(node.url, a, a1);
    await untilLatest(node.url, b, b1);

    const s = await openSse(muxUrl([a, b, empty]));
    expect(s.status).toBe(200);
    expect(s.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(s.headers.get("cache-control")).toBe("no-cache, no-transform");
    expect(s.bodyStart).toMatch(/^retry: \d+\n/);
    await s.untilEvents(3);
    expect(s.events.slice(0, 3).every((e) => e.type === "snapshot")).toBe(true);
    const snapshots = new Map(s.events.slice(0, 3).map((e) => [dataOf<{ match: string }>(e).match, e]));
    expect([...snapshots.keys()].sort()).toEqual([a, b, empty].sort());
    expect(dataOf(snapshots.get(a)!)).toEqual({ match: a, state: { side: "a" } });
    expect(dataOf(snapshots.get(b)!)).toEqual({ match: b, state: { side: "b" } });
    expect(dataOf(snapshots.get(empty)!)).toEqual({ match: empty, state: {} });
    // After the three snapshots the composite id names every match: the empty one at 0 (nothing yet).
    expect(Object.fromEntries(parseComposite(s.events[2]!.lastEventId))).toEqual({ [a]: seqOf(a1), [b]: seqOf(b1), [empty]: 0 });
    // The tag once, at the end: the log's, the one the publishes answered with.
    const tag = commonTag([a1, b1]);
    expect(tagOf(s.events[2]!.lastEventId)).toBe(tag);

    const published: [string, string][] = [];
    for (let i = 0; i < 12; i++) {
      const m = [a, b, empty][i % 3]!;
      published.push([m, await publishOk(node.url, m, { type: "goal", data: { i, m } })]);
    }
    await s.untilEvents(3 + published.length);
    await Bun.sleep(SETTLE_MS);
    await s.close();

    const live = s.events.slice(3);
    expect(live.map((e) => [matchOf(e), matchIdIn(e.lastEventId, matchOf(e))])).toEqual(published);
    // Each composite id carries, for every match, the last id sent so far, and the log's tag.
    const last = new Map([
      [a, seqOf(a1)],
      [b, seqOf(b1)],
      [empty, 0],
    ]);
    for (const e of live) {
      last.set(matchOf(e), parseComposite(e.lastEventId).get(matchOf(e))!);
      expect(parseComposite(e.lastEventId)).toEqual(last);
      expect(tagOf(e.lastEventId)).toBe(tag);
      expect(e.type).toBe("goal");
    }
  });

  for (const via of ["header", "query"] as const) {
    test(`reconnecting with the last composite id (${via}) resumes exactly for every match`, async () => {
      const matches = [uniqueMatch("mra"), uniqueMatch("mrb"), uniqueMatch("mrc")];
      const [a, b, c] = matches as [string, string, string];
      await publishOk(node.url, a, { type: "kickoff" });
      // b has events, c has none when the first connection opens.
      await publishOk(node.url, b, { type: "kickoff" });
      const first = await openSse(muxUrl(matches));
      await first.untilEvents(3);
      const before: [string, string][] = [];
      for (const m of [a, b, a, b]) before.push([m, await publishOk(node.url, m, { type: "goal" })]);
      await first.untilEvents(3 + before.length);
      await first.close();
      const lastId = first.lastEventId;
      expect(parseComposite(lastId).get(c)).toBe(0);

      // Missed while away: events of all three matches, including the first ever event of c.
      const missed: [string, string][] = [];
      for (const m of [c, a, b, c, a]) missed.push([m, await publishOk(node.url, m, { type: "card" })]);

      const s = await openSse(
        via === "header" ? muxUrl(matches) : muxUrl(matches, `&lastEventId=${encodeURIComponent(lastId)}`),
        via === "header" ? { headers: { "last-event-id": lastId } } : {},
      );
      await s.untilEvents(missed.length);
      const live = await publishOk(node.url, b, { type: "fulltime" });
      await s.untilEvents(missed.length + 1);
      await Bun.sleep(SETTLE_MS);
      await s.close();

      expect(s.snapshots).toEqual([]);
      const got = idsByMatch(s, matches);
      for (const m of matches) {
        const expected = [...missed, [b, live] as [string, string]].filter(([mm]) => mm === m).map(([, id]) => id);
        expect({ match: m, ...compareDelivery(expected, got.get(m)!) }).toMatchObject({ match: m, exact: true });
      }
    });
  }

  test("a match added on reconnect gets a snapshot while the others resume", async () => {
    const a = uniqueMatch("mna");
    const added = uniqueMatch("mnb");
    const a1 = await publishOk(node.url, a, { type: "kickoff" });
    const addedId = await publishOk(node.url, added, { type: "kickoff", state: { x: 1 } });
    await untilLatest(node.url, added, addedId);
    const a2 = await publishOk(node.url, a, { type: "goal" });
    const s = await openSse(muxUrl([a, added]), { headers: { "last-event-id": compositeOf([[a, seqOf(a1)]], tagOf(a1)) } });
    await s.untilEvents(2);
    await Bun.sleep(SETTLE_MS);
    await s.close();
    const snapshots = s.snapshots;
    expect(snapshots.map((e) => dataOf(e))).toEqual([{ match: added, state: { x: 1 } }]);
    expect(idsByMatch(s, [a, added]).get(a)).toEqual([a2]);
  });

  test("an unparseable composite id gives every match a snapshot, never an error", async () => {
    const matches = [uniqueMatch("mga"), uniqueMatch("mgb")];
    for (const bad of ["garbage", "12", ":::,,,", "x".repeat(5000)]) {
      const s = await openSse(muxUrl(matches), { headers: { "last-event-id": bad } });
      expect(s.status).toBe(200);
      await s.untilEvents(2);
      await s.close();
      expect(s.events.map((e) => e.type)).toEqual(["snapshot", "snapshot"]);
    }
  });

  test("subscribers disconnecting and resuming while several matches are published stay exact", async () => {
    const matches = [uniqueMatch("mca"), uniqueMatch("mcb"), uniqueMatch("mcc")];
    for (const m of matches) await untilLatest(node.url, m, await publishOk(node.url, m, { type: "kickoff" }));
    const random = seededRandom(4242);
    const perMatch = 100;
    const total = perMatch * matches.length;
    // Everyone is connected (snapshots in) before publishing starts, so every tick is theirs to receive.
    const firstConnections = await Promise.all(Array.from({ length: 8 }, () => openSse(muxUrl(matches))));
    await Promise.all(firstConnections.map((s) => s.untilEvents(matches.length)));
    for (const s of firstConnections) expect(s.events.map((e) => e.type)).toEqual(matches.map(() => "snapshot"));

    let publishing = true;
    const publishers = Promise.all(matches.map((m) => publishConcurrently(node.url, m, perMatch, 1, (i) => ({ type: "tick", data: { i } })))).then((r) => {
      publishing = false;
      return r;
    });
    const subscribers = firstConnections.map(async (first) => {
      const received = new Map(matches.map((m) => [m, [] as string[]]));
      const count = (): number => [...received.values()].reduce((n, l) => n + l.length, 0);
      let s: SseConnection = first;
      let connections = 1;
      for (;;) {
        const stopAfter = publishing ? 5 + Math.floor(random() * 40) : Infinity;
        await s.until(() => s.matchEvents.length >= stopAfter || count() + s.matchEvents.length >= total, 10_000, "events").catch(() => {});
        await s.close();
        if (s !== first) expect(s.snapshots).toEqual([]);
        for (const [m, ids] of idsByMatch(s, matches)) received.get(m)!.push(...ids);
        if (count() >= total || connections > 200) break;
        s = await openSse(muxUrl(matches), { headers: { "last-event-id": s.lastEventId } });
        connections++;
      }
      return { received, connections };
    });
    const published = await publishers;
    const results = await Promise.all(subscribers);
    for (const { received, connections } of results) {
      expect(connections).toBeGreaterThan(1);
      matches.forEach((m, k) => {
        expect({ match: m, ...compareDelivery([...published[k]!].sort(byId), received.get(m)!) }).toMatchObject({ match: m, exact: true });
      });
    }
  }, 60_000);
});

describe("limits and bad input", () => {
  test(`exactly MAX_MATCHES_PER_STREAM (${MAX_MATCHES}) matches is fine; one more is 413 JSON`, async () => {
    const ok = await openSse(muxUrl(Array.from({ length: MAX_MATCHES }, (_, i) => `lim-${i}`)));
    expect(ok.status).toBe(200);
    await ok.untilEvents(MAX_MATCHES);
    await ok.close();

    const res = await fetch(muxUrl(Array.from({ length: MAX_MATCHES + 1 }, (_, i) => `lim-${i}`)));
    expect(res.status).toBe(413);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.error).toBe("too_many_matches");
    expect(typeof body.message).toBe("string");
  });

  for (const [name, query] of [
    ["an invalid match id", "match=ok&match=bad%20id"],
    ["a match id with a colon", "match=a:1"],
    ["a match id too long", `match=${"x".repeat(65)}`],
    ["no match at all", ""],
    ["an empty match", "match="],
  ] as const) {
    test(`${name} is 400 JSON`, async () => {
      const res = await fetch(`${node.url}/events?${query}`);
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toStartWith("application/json");
      const body = (await res.json()) as Record<string, unknown>;
      expect(typeof body.error).toBe("string");
      expect(typeof body.message).toBe("string");
    });
  }
});
