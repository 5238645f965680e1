/**
 * Publishing and match state against a real node and a real JetStream: 201 after store, increasing ids,
 * idempotency keys, omitted data, merge-patch state, and the match list with paging.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse, dataOf } from "../helpers/sse.ts";
import { EVENT_ID, tagOf } from "../helpers/eventIds.ts";
import { byId, getJson, publish, publishOk, uniqueMatch } from "./touchlineApi.ts";
import { waitFor } from "../helpers/cluster.ts";

setDefaultTimeout(30_000);

const { node } = useNode();

/** Reads a match's events from the start (resume from before its first id) and closes. */
async function eventsOf(match: string, afterId: string, expected: number): Promise<{ id: string; type: string; data: unknown }[]> {
  const s = await openSse(`${node.url}/matches/${match}/events?lastEventId=${afterId}`);
  await s.untilEvents(expected);
  // Anything stored twice would arrive right behind: give it a moment to show.
  await Bun.sleep(200);
  await s.close();
  return s.events.map((e) => ({ id: e.lastEventId, type: e.type, data: dataOf(e).data }));
}

describe("POST /matches/{match}/events", () => {
  test("answers 201 with an id that is already readable, and ids increase", async () => {
    const match = uniqueMatch("pub");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await publish(node.url, match, { type: "goal", data: { n: i }, state: { n: i } });
      expect(answer.status).toBe(201);
      expect(answer.headers.get("content-type")).toStartWith("application/json");
      expect(Object.keys(answer.json)).toEqual(["id"]);
      expect(answer.json.id).toMatch(EVENT_ID);
      ids.push(answer.json.id);
      // Stored before the answer: the match already reports it.
      const state = await getJson<{ id: string; state: { n: number } }>(`${node.url}/matches/${match}`);
      expect(state.status).toBe(200);
      expect(state.json.id).toBe(answer.json.id);
      expect(state.json.state.n).toBe(i);
    }
    expect([...ids].sort(byId)).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // Every id names the same log incarnation.
    expect(new Set(ids.map(tagOf)).size).toBe(1);
  });

  test("an idempotency key published twice answers 200 with the first id and stores once; the first body wins", async () => {
    const match = uniqueMatch("dup");
    const before = await publishOk(node.url, match, { type: "kickoff", data: null });
    const first = await publish(node.url, match, { type: "goal", data: { v: "first" }, state: { v: "first" }, key: "goal-1" });
    expect(first.status).toBe(201);
    const again = await publish(node.url, match, { type: "goal", data: { v: "second" }, state: { v: "second" }, key: "goal-1" });
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ id: first.json.id, duplicate: true });
    const after = await publishOk(node.url, match, { type: "fulltime", data: null, state: { end: true } });

    const events = await eventsOf(match, before, 2);
    expect(events).toEqual([
      { id: first.json.id, type: "goal", data: { v: "first" } },
      { id: after, type: "fulltime", data: null },
    ]);
    const state = await getJson<{ state: Record<string, unknown> }>(`${node.url}/matches/${match}`);
    expect(state.json.state).toEqual({ v: "first", end: true });
  });

  test("the same key on another match is a different event", async () => {
    const a = await publish(node.url, uniqueMatch("keya"), { type: "goal", key: "shared-key" });
    const b = await publish(node.url, uniqueMatch("keyb"), { type: "goal", key: "shared-key" });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.json.id).not.toBe(a.json.id);
  });

  test("omitted data arrives as null", async () => {
    const match = uniqueMatch("nodata");
    const before = await publishOk(node.url, match, { type: "kickoff", data: 1 });
    const id = await publishOk(node.url, match, { type: "halftime" });
    const s = await openSse(`${node.url}/matches/${match}/events`, { headers: { "last-event-id": before } });
    await s.untilEvents(1);
    await s.close();
    const e = s.events[0]!;
    expect(e.lastEventId).toBe(id);
    const payload = dataOf(e);
    expect(Object.hasOwn(payload, "data")).toBe(true);
    expect(payload.data).toBeNull();
    expect(payload.match).toBe(match);
    expect(typeof payload.ts).toBe("number");
  });
});

describe("GET /matches/{match}", () => {
  test("state is the RFC 7386 merge-patch fold of every event's state, in order", async () => {
    const match = uniqueMatch("state");
    const patches: Record<string, unknown>[] = [
      { home: "Ajax", away: "PSV", homeScore: 0, awayScore: 0, status: "scheduled", meta: { ref: "Kuipers", var: true, venue: { city: "A" } } },
      { status: "live", minute: 1, tags: ["a", "b"] },
      { homeScore: 1, meta: { var: null, venue: { seats: 55000 } } },
      { tags: ["c"], minute: null, extra: { deep: { x: 1 } } },
      { extra: "flat", meta: { ref: null } },
    ];
    let last = "";
    for (const state of patches) last = await publishOk(node.url, match, { type: "update", state });
    // An event without a state patch leaves the state alone but is the latest id.
    last = await publishOk(node.url, match, { type: "comment", data: { text: "no state" } });

    const answer = await getJson<{ match: string; id: string; state: unknown }>(`${node.url}/matches/${match}`);
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({
      match,
      id: last,
      state: {
        home: "Ajax",
        away: "PSV",
        homeScore: 1,
        awayScore: 0,
        status: "live",
        meta: { venue: { city: "A", seats: 55000 } },
        tags: ["c"],
        extra: "flat",
      },
    });
  });

  test("a match with no events is 404 with the JSON error", async () => {
    const answer = await getJson(`${node.url}/matches/${uniqueMatch("nobody")}`);
    expect(answer.status).toBe(404);
    expect(answer.json.error).toBe("not_found");
    expect(typeof answer.json.message).toBe("string");
  });
});

describe("GET /matches", () => {
  test("lists the most recently active first, with limit and cursor paging", async () => {
    const prefix = uniqueMatch("list");
    const names = [`${prefix}-1`, `${prefix}-2`, `${prefix}-3`, `${prefix}-4`] as const;
    const lastIds: Record<string, string> = {};
    for (const m of names) {
      lastIds[m] = await publishOk(node.url, m, { type: "kickoff", state: { name: m } });
      await Bun.sleep(5);
    }
    // Make the first one the most recent again.
    lastIds[names[0]] = await publishOk(node.url, names[0], { type: "goal", state: { scored: true } });
    const expectedOrder: string[] = [names[0], names[3], names[2], names[1]];

    type Page = { matches: { match: string; id: string; state: Record<string, unknown> }[]; next: string | null };
    // The listing is the match index, which each owner updates as it applies events (a moment after
    // the 201; GET /matches/{m} is the read-your-writes one): wait until it has all five publishes.
    await waitFor(
      async () => {
        const all = (await getJson<Page>(`${node.url}/matches?limit=1000`)).json.matches;
        return names.every((m) => all.some((e) => e.match === m && e.id === lastIds[m]));
      },
      5000,
      "the listing to show every publish",
    );
    const first = await getJson<Page>(`${node.url}/matches?limit=2`);
    expect(first.status).toBe(200);
    expect(first.json.matches.map((m) => m.match)).toEqual(expectedOrder.slice(0, 2));
    expect(first.json.matches[0]).toEqual({ match: names[0], id: lastIds[names[0]]!, state: { name: names[0], scored: true } });
    expect(typeof first.json.next).toBe("string");

    const second = await getJson<Page>(`${node.url}/matches?limit=2&cursor=${encodeURIComponent(first.json.next!)}`);
    expect(second.status).toBe(200);
    expect(second.json.matches.map((m) => m.match)).toEqual(expectedOrder.slice(2, 4));

    // Walking every page one at a time sees every match exactly once, newest first.
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let guard = 0; guard < 1000; guard++) {
      const page: Page = (await getJson<Page>(`${node.url}/matches?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`)).json;
      expect(page.matches.length).toBeLessThanOrEqual(1);
      seen.push(...page.matches.map((m) => m.match));
      cursor = page.next;
      if (cursor === null) break;
    }
    expect(cursor).toBeNull();
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((m) => (names as readonly string[]).includes(m))).toEqual(expectedOrder);

    const all = await getJson<Page>(`${node.url}/matches`);
    expect(all.json.matches.map((m) => m.match)).toEqual(seen.slice(0, all.json.matches.length));
  });

  test("a bad limit is a 400 JSON error", async () => {
    const answer = await getJson(`${node.url}/matches?limit=abc`);
    expect(answer.status).toBe(400);
    expect(typeof answer.json.error).toBe("string");
  });
});
