/**
 * A resume with more to replay than CLIENT_BUFFER_BYTES: the node sends the whole events that fit and
 * ends the stream (`replay_paged`), and a client coming back with the last id it got moves forward
 * each round until it has everything, exactly once and in order. Before this, such a stream was cut
 * as slow before its first byte and the client came back with the same id forever.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { SseParser } from "../../src/sse/parse.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { commonTag, compositeOf, cursorOf, seqOf, tagOf } from "../helpers/eventIds.ts";
import { metricValue, publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(60_000);

const BUFFER_BYTES = 64 * 1024;
const EVENTS = 400;
/** About 1 KB per event: the whole replay is about six times the buffer. */
const PADDING = "x".repeat(1000);
const MAX_ROUNDS = 50;

const { node } = useNode({ env: { CLIENT_BUFFER_BYTES: String(BUFFER_BYTES) } });

/** Reads one connection to its end; returns the events and the last id seen. */
async function readOnce(url: string, lastId: string): Promise<{ events: { id: string; type: string }[]; lastId: string }> {
  const res = await fetch(url, { headers: { "Last-Event-ID": lastId } });
  expect(res.status).toBe(200);
  const events: { id: string; type: string }[] = [];
  let last = lastId;
  const parser = new SseParser({
    onEvent: (e) => {
      events.push({ id: e.lastEventId, type: e.type });
      if (e.lastEventId) last = e.lastEventId;
    },
  });
  const reader = res.body!.getReader();
  // A paged replay ends by itself; a caught-up stream stays open, so stop once nothing came for a while.
  for (;;) {
    const next = await Promise.race([reader.read(), Bun.sleep(1500).then(() => "idle" as const)]);
    if (next === "idle") {
      await reader.cancel();
      break;
    }
    if (next.done) break;
    parser.feedBytes(next.value);
  }
  return { events, lastId: last };
}

async function publishMany(match: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < EVENTS; i++) ids.push(await publishOk(node.url, match, { type: "tick", data: { i, padding: PADDING } }));
  return ids;
}

test("a single-match resume larger than the client buffer arrives over several connections, exactly once", async () => {
  const match = uniqueMatch("paged");
  const ids = await publishMany(match);
  const pagedBefore = await metricValue(node.url, "touchline_streams_closed_total", { reason: "replay_paged" });
  const replayedBefore = await metricValue(node.url, "touchline_replayed_events_total");
  const seen: string[] = [];
  let lastId = ids[0]!;
  let rounds = 0;
  while (seen.length < EVENTS - 1 && rounds < MAX_ROUNDS) {
    rounds++;
    const got = await readOnce(`${node.url}/matches/${match}/events`, lastId);
    expect(got.events.length).toBeGreaterThan(0);
    for (const e of got.events) {
      expect(e.type).toBe("tick");
      seen.push(e.id);
    }
    lastId = got.lastId;
  }
  expect(seen).toEqual(ids.slice(1));
  expect(rounds).toBeGreaterThan(1);
  expect(await metricValue(node.url, "touchline_streams_closed_total", { reason: "replay_paged" })).toBeGreaterThanOrEqual(pagedBefore + rounds - 1);
  expect(await metricValue(node.url, "touchline_slow_clients_cut_total")).toBe(0);
  // Replayed events count what reached the client, not what a full page left for the next round.
  expect(await metricValue(node.url, "touchline_replayed_events_total")).toBe(replayedBefore + seen.length);
});

test("a multiplexed resume larger than the client buffer moves every match forward each round", async () => {
  const a = uniqueMatch("pagedA");
  const b = uniqueMatch("pagedB");
  const idsA = await publishMany(a);
  const idsB = await publishMany(b);
  const seen = new Map<string, number>();
  const tag = commonTag([...idsA, ...idsB]);
  let lastId = compositeOf(
    [
      [a, seqOf(idsA[0]!)],
      [b, seqOf(idsB[0]!)],
    ],
    tag,
  );
  let rounds = 0;
  let total = 0;
  while (total < 2 * (EVENTS - 1) && rounds < MAX_ROUNDS) {
    rounds++;
    const got = await readOnce(`${node.url}/events?match=${a}&match=${b}`, lastId);
    expect(got.events.length).toBeGreaterThan(0);
    for (const e of got.events) {
      expect(seen.has(e.id)).toBe(false);
      seen.set(e.id, total++);
    }
    lastId = got.lastId;
  }
  expect(total).toBe(2 * (EVENTS - 1));
  expect(rounds).toBeGreaterThan(1);
  // The last composite id names the last event of each match, under the log's tag.
  expect(Object.fromEntries(cursorOf(lastId))).toEqual({ [a]: seqOf(idsA.at(-1)!), [b]: seqOf(idsB.at(-1)!) });
  expect(tagOf(lastId)).toBe(tag);
});
