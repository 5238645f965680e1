/**
 * MAX_STATE_BYTES: a match's state is bounded in bytes. A publish whose state patch would take it past
 * the bound is refused (413 state_too_large, nothing stored), alone or as an item of a batch (naming
 * the item); removing keys makes room again. An event that reaches the log past the check (published
 * straight to NATS) is streamed, and its patch left out of the state.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { getJson, publish, publishOk, uniqueMatch, untilLatest } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

const MAX_STATE_BYTES = 4096;
/** About a quarter of the bound each. */
const CHUNK = "x".repeat(1000);

const { nats, node } = useNode({ env: { MAX_STATE_BYTES: String(MAX_STATE_BYTES), LOG_LEVEL: "info" } });
let nc: NatsConnection;
const streams: SseConnection[] = [];

beforeAll(async () => {
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  for (const s of streams) await s.close();
  await nc?.close();
});

interface MatchAnswer {
  id: string;
  state: Record<string, unknown>;
}

test("a patch that would pass the bound: 413 state_too_large, nothing stored; deleting keys makes room", async () => {
  const match = uniqueMatch("state-bound");
  const conn = await openSse(`${node.url}/matches/${match}/events`);
  streams.push(conn);
  // Its (empty) snapshot first: a stream still opening when the first event is stored would get it in its snapshot.
  await conn.until(() => conn.snapshots.length === 1, 10_000, "snapshot");
  const stored = [];
  for (const key of ["a", "b", "c"]) stored.push(await publishOk(node.url, match, { type: "note", data: null, state: { [key]: CHUNK } }));
  await untilLatest(node.url, match, stored.at(-1)!);

  const refused = await publish(node.url, match, { type: "note", data: null, state: { d: CHUNK, e: CHUNK } });
  expect(refused.status).toBe(413);
  expect(refused.json).toMatchObject({ error: "state_too_large" });
  expect(String((refused.json as { message?: string }).message)).toContain("MAX_STATE_BYTES (4096)");

  const roomMade = await publishOk(node.url, match, { type: "note", data: null, state: { a: null, b: null, d: CHUNK } });
  await untilLatest(node.url, match, roomMade);
  const state = (await getJson<MatchAnswer>(`${node.url}/matches/${match}`)).json;
  expect(state).toMatchObject({ id: roomMade, state: { c: CHUNK, d: CHUNK } });
  expect(Object.keys(state.state).sort()).toEqual(["c", "d"]);
  // The stream carried exactly the stored events: the refused one never existed.
  await conn.untilEvents(1 + stored.length + 1);
  expect(conn.events.slice(1).map((e) => e.lastEventId)).toEqual([...stored, roomMade]);
});

test("a batch whose items would pass a match's bound together: 413 naming the item, nothing of the batch stored", async () => {
  const match = uniqueMatch("state-bound-batch");
  const other = uniqueMatch("state-bound-other");
  const before = await publishOk(node.url, match, { type: "note", data: null, state: { a: CHUNK } });
  await untilLatest(node.url, match, before);
  const res = await fetch(`${node.url}/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([
      { match: other, type: "note", data: null, state: { x: 1 } },
      { match, type: "note", data: null, state: { b: CHUNK } },
      { match, type: "note", data: null, state: { c: CHUNK } },
      { match, type: "note", data: null, state: { d: CHUNK, e: CHUNK } },
    ]),
  });
  expect(res.status).toBe(413);
  expect(await res.json()).toMatchObject({ error: "state_too_large", index: 3 });
  expect((await getJson(`${node.url}/matches/${other}`)).status).toBe(404);
  expect((await getJson<MatchAnswer>(`${node.url}/matches/${match}`)).json.id).toBe(before);
});

test("an event stored past the check (straight to NATS) is streamed; its patch is left out of the state", async () => {
  const match = uniqueMatch("state-bound-direct");
  const conn = await openSse(`${node.url}/matches/${match}/events`);
  streams.push(conn);
  await conn.until(() => conn.snapshots.length === 1, 10_000, "snapshot");
  const first = await publishOk(node.url, match, { type: "note", data: null, state: { a: CHUNK } });
  const js = jetstream(nc);
  const ack = await js.publish(`touchline.events.${match}`, JSON.stringify({ type: "huge", data: { n: 1 }, state: { b: "y".repeat(5000) } }));
  const after = await publishOk(node.url, match, { type: "note", data: null, state: { c: 1 } });
  await untilLatest(node.url, match, after);
  await conn.untilEvents(4);
  expect(conn.events.slice(1).map((e) => e.type)).toEqual(["note", "huge", "note"]);
  expect(conn.events[2]!.lastEventId).toStartWith(`${ack.seq}@`);
  const state = (await getJson<MatchAnswer>(`${node.url}/matches/${match}`)).json;
  expect(state.id).toBe(after);
  expect(state.state).toEqual({ a: CHUNK, c: 1 });
  expect(node.output()).toContain("a state patch that would pass MAX_STATE_BYTES is not applied");
  expect(first).not.toBe(after);
});
