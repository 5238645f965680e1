/**
 * Batch publishing (`POST /events`): validation before anything is stored, order per match within and
 * across batches, dedupe by key inside a batch and across batches, auth per item, limits counting
 * every item, and a batch whose storing stops part-way. Real node, real nats-server; every stored
 * event is read back through the node.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, waitFor, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { hsToken, SECRET } from "../security/securityFixtures.ts";
import { readJson, uniqueMatch } from "./touchlineApi.ts";
import { publishBatch, TouchlineHttpError } from "../../src/client/index.ts";
import { connect } from "@nats-io/transport-node";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";

setDefaultTimeout(60_000);

const ID = /^(\d+)@[0-9a-z]+$/;
const seqOf = (id: string): number => Number(ID.exec(id)?.[1] ?? Number.NaN);
/** How long a stored event may take to show in a poll (the owner reading it off the log). */
const STORED_WITHIN_MS = 10_000;

let nats: NatsFixture;
let open: NodeFixture;
let guarded: NodeFixture;
let limited: NodeFixture;

beforeAll(async () => {
  nats = await startNats();
  [open, guarded, limited] = await Promise.all([
    startNode({ natsUrl: nats.url }),
    startNode({ natsUrl: nats.url, env: { TOUCHLINE_JWT_SECRET: SECRET } }),
    startNode({ natsUrl: nats.url, env: { LIMITS_EXEMPT: "none", PUBLISH_RATE: "5", PUBLISH_BURST: "20", BATCH_MAX_ITEMS: "50" } }),
  ]);
});

afterAll(async () => {
  await Promise.all([open, guarded, limited].map((n) => n?.kill()));
  await nats?.stop();
});

function postBatch(base: string, items: unknown, headers: Record<string, string> = {}) {
  return fetch(`${base}/events`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof items === "string" ? items : JSON.stringify(items),
  }).then((r) => readJson<{ results?: { id: string; duplicate?: boolean }[]; error?: string; message?: string; index?: number; stored?: number }>(r));
}

/**
 * Every event stored for the match, read back from its start through a poll, once `count` are there: a
 * poll answers what the match's owner has read off the log so far, which may trail an acknowledgement
 * by a moment (the owner can be another node). Then exactly `count` must be there.
 */
async function storedEvents(base: string, match: string, count: number): Promise<{ id: string; n: unknown }[]> {
  const read = async () => readJson<{ events: { id: string; data: { n: unknown } }[] }>(await fetch(`${base}/matches/${match}/poll?after=0&wait=0`));
  await waitFor(async () => (await read()).json.events.length >= count, STORED_WITHIN_MS, `${count} events of ${match}`).catch(() => {});
  const r = await read();
  expect(r.status).toBe(200);
  expect(r.json.events).toHaveLength(count);
  return r.json.events.map((e) => ({ id: e.id, n: e.data.n }));
}

test("a batch over several matches answers 201 with every id in request order; each match keeps its order, within and across batches", async () => {
  const [a, b] = [uniqueMatch("ba"), uniqueMatch("bb")];
  const first = await postBatch(open.url, [
    { match: a, type: "goal", data: { n: 1 } },
    { match: b, type: "goal", data: { n: 1 } },
    { match: a, type: "card", data: { n: 2 }, state: { homeScore: 1 } },
    { match: a, type: "goal", data: { n: 3 } },
  ]);
  expect(first.status).toBe(201);
  const ids = first.json.results!.map((r) => r.id);
  expect(ids).toHaveLength(4);
  for (const id of ids) expect(id).toMatch(ID);
  // Stored in request order: sequences increase through the batch.
  expect(ids.map(seqOf)).toEqual([...ids.map(seqOf)].sort((x, y) => x - y));
  const second = await postBatch(open.url, [
    { match: a, type: "goal", data: { n: 4 } },
    { match: b, type: "goal", data: { n: 2 } },
  ]);
  expect(second.status).toBe(201);
  const eventsA = await storedEvents(open.url, a, 4);
  expect(eventsA.map((e) => e.n)).toEqual([1, 2, 3, 4]);
  expect(eventsA.map((e) => e.id)).toEqual([ids[0]!, ids[2]!, ids[3]!, second.json.results![0]!.id]);
  expect((await storedEvents(open.url, b, 2)).map((e) => e.n)).toEqual([1, 2]);
});

test("many batches at once all answer 201 (they take turns, none is refused), and each match keeps its order within every batch", async () => {
  const matches = ["fa", "fb", "fc", "fd"].map((p) => uniqueMatch(p));
  const BATCHES = 8;
  const PER_MATCH = 100;
  // 3,200 events at once: the batches take turns (and wait while the node's deliveries are behind).
  const batches = Array.from({ length: BATCHES }, (_, b) =>
    Array.from({ length: PER_MATCH * matches.length }, (_, i) => ({
      match: matches[i % matches.length]!,
      type: "tick",
      data: { b, n: Math.floor(i / matches.length) },
    })),
  );
  const answers = await Promise.all(batches.map((items) => postBatch(open.url, items)));
  for (const a of answers) {
    expect(a.status).toBe(201);
    expect(a.json.results).toHaveLength(PER_MATCH * matches.length);
  }
  for (const match of matches) {
    const r = await readJson<{ events: { data: { b: number; n: number } }[] }>(await fetch(`${open.url}/matches/${match}/poll?after=0&wait=0`));
    expect(r.json.events).toHaveLength(BATCHES * PER_MATCH);
    for (let b = 0; b < BATCHES; b++) {
      expect(r.json.events.filter((e) => e.data.b === b).map((e) => e.data.n)).toEqual(Array.from({ length: PER_MATCH }, (_, i) => i));
    }
  }
});

test("one bad item answers 400 naming its index, and nothing of the batch is stored", async () => {
  const m = uniqueMatch("bad");
  const cases: [unknown, number | undefined][] = [
    [
      [
        { match: m, type: "goal" },
        { match: m, type: "snapshot" },
      ],
      1,
    ],
    [
      [
        { match: m, type: "goal" },
        { match: "no spaces allowed", type: "goal" },
      ],
      1,
    ],
    [[{ match: m, type: "goal", key: "" }], 0],
    [
      [
        { match: m, type: "goal" },
        { match: m, type: "goal", state: [1] },
        { match: m, type: "goal" },
      ],
      1,
    ],
    [{ match: m, type: "goal" }, undefined],
    [[], undefined],
  ];
  for (const [items, index] of cases) {
    const r = await postBatch(open.url, items);
    expect(r.status).toBe(400);
    expect(r.json.error).toBe("invalid_event");
    if (index !== undefined) {
      expect(r.json.index).toBe(index);
      expect(r.json.message).toStartWith(`item ${index}:`);
    }
  }
  expect((await postBatch(open.url, "[{not json")).status).toBe(400);
  const state = await fetch(`${open.url}/matches/${m}`);
  expect(state.status).toBe(404);
  await state.body?.cancel();
});

test("a key repeated inside a batch or across batches stores the event once and answers the first id as a duplicate", async () => {
  const m = uniqueMatch("dedupe");
  const r1 = await postBatch(open.url, [
    { match: m, type: "goal", data: { n: 1 }, key: "k1" },
    { match: m, type: "goal", data: { n: 2 }, key: "k2" },
    { match: m, type: "goal", data: { n: 99 }, key: "k1" },
  ]);
  expect(r1.status).toBe(201);
  const [k1, k2, again] = r1.json.results!;
  expect(k1!.duplicate).toBeUndefined();
  expect(k2!.duplicate).toBeUndefined();
  expect(again).toEqual({ id: k1!.id, duplicate: true });
  const r2 = await postBatch(open.url, [
    { match: m, type: "goal", data: { n: 98 }, key: "k2" },
    { match: m, type: "goal", data: { n: 3 }, key: "k3" },
  ]);
  expect(r2.json.results![0]).toEqual({ id: k2!.id, duplicate: true });
  expect((await storedEvents(open.url, m, 3)).map((e) => e.n)).toEqual([1, 2, 3]);
});

test("with tokens, every match of the batch must be covered: one uncovered item refuses the whole batch", async () => {
  const [a, b] = [uniqueMatch("auth"), uniqueMatch("auth")];
  const onlyA = await hsToken({ publish: [a] });
  const items = [
    { match: a, type: "goal" },
    { match: b, type: "goal" },
  ];
  expect((await postBatch(guarded.url, items)).status).toBe(401);
  const refused = await postBatch(guarded.url, items, { Authorization: `Bearer ${onlyA}` });
  expect(refused.status).toBe(403);
  const none = await fetch(`${guarded.url}/matches/${a}`);
  expect(none.status).toBe(404);
  await none.body?.cancel();
  const both = await hsToken({ publish: [a, b] });
  expect((await postBatch(guarded.url, items, { Authorization: `Bearer ${both}` })).status).toBe(201);
});

test("limits: a batch counts each item against PUBLISH_RATE, and BATCH_MAX_ITEMS bounds its size", async () => {
  const m = uniqueMatch("lim");
  const item = { match: m, type: "goal" };
  expect(
    (
      await postBatch(
        limited.url,
        Array.from({ length: 51 }, () => item),
      )
    ).status,
  ).toBe(413);
  // A burst of 20: a batch of 20 passes, the next one is over the rate.
  expect(
    (
      await postBatch(
        limited.url,
        Array.from({ length: 20 }, () => item),
      )
    ).status,
  ).toBe(201);
  const over = await postBatch(limited.url, [item]);
  expect(over.status).toBe(429);
  expect(over.json.error).toBe("rate_limited");
});

test("the typed client's publishBatch answers the ids in order and throws the node's error for a bad batch", async () => {
  const m = uniqueMatch("client");
  const results = await publishBatch(open.url, [
    { match: m, type: "goal", data: { n: 1 }, key: "c1" },
    { match: m, type: "goal", data: { n: 2 }, key: "c1" },
  ]);
  expect(results[0]!.id).toMatch(ID);
  expect(results[1]).toEqual({ id: results[0]!.id, duplicate: true });
  const err = await publishBatch(open.url, [{ match: m, type: "snapshot" }]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TouchlineHttpError);
  expect((err as TouchlineHttpError).status).toBe(400);
  expect((err as TouchlineHttpError).code).toBe("invalid_event");
});

test("a batch that JetStream stops storing part-way answers 503 with the ids stored so far; a retry with the same keys stores the rest, once and in order", async () => {
  const match = uniqueMatch("partial");
  const items = Array.from({ length: 8 }, (_, n) => ({ match, type: "goal", data: { n }, key: `partial-${n}` }));
  const ROOM = 3;
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    const stream = "touchline_events";
    const before = await jsm.streams.info(stream);
    // The event stream takes ROOM more messages and refuses the rest: JetStream stores the batch's first
    // ROOM items and answers the others with an error.
    await jsm.streams.update(stream, { ...before.config, max_msgs: before.state.messages + ROOM, discard: DiscardPolicy.New });
    let partial: Awaited<ReturnType<typeof postBatch>>;
    try {
      partial = await postBatch(open.url, items);
    } finally {
      await jsm.streams.update(stream, before.config);
    }
    expect(partial.status).toBe(503);
    expect(partial.json.error).toBe("publish_outcome_unknown");
    expect(partial.json.stored).toBe(ROOM);
    const storedIds = partial.json.results!.map((r) => r.id);
    expect(storedIds).toHaveLength(ROOM);
    expect(storedIds.map(seqOf)).toEqual([...storedIds.map(seqOf)].sort((a, b) => a - b));

    // What was answered stored is stored; the rest is not.
    expect(await storedEvents(open.url, match, ROOM)).toEqual(storedIds.map((id, n) => ({ id, n })));

    // The producer retries the whole batch with its keys: the stored items answer as duplicates with
    // their ids, the rest are stored after them.
    const retried = await postBatch(open.url, items);
    expect(retried.status).toBe(201);
    const results = retried.json.results!;
    expect(results.slice(0, ROOM)).toEqual(storedIds.map((id) => ({ id, duplicate: true })));
    expect(results.slice(ROOM).every((r) => r.duplicate === undefined)).toBe(true);
    const events = await storedEvents(open.url, match, items.length);
    expect(events.map((e) => e.n)).toEqual(items.map((_, n) => n));
    expect(events.map((e) => e.id)).toEqual([...storedIds, ...results.slice(ROOM).map((r) => r.id)]);
  } finally {
    await nc.close();
  }
});
