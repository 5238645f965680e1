/**
 * The long-polling fallback `GET /matches/{match}/poll?after=<id>&wait=<ms>`: the same ids as the stream,
 * a waiting poll answered as soon as an event is published, and a snapshot when `after` is missing.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { dataOf, openSse } from "../helpers/sse.ts";
import { getJson, publishOk, uniqueMatch, untilLatest } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

const LONG_WAIT_MS = 5000;
/** A waiting poll must answer this soon after the publish, far inside its wait. */
const PROMPT_MS = 1500;

interface PollAnswer {
  match: string;
  events: { id: string; type: string; data: unknown; ts: number; state?: unknown }[];
  next: string | null;
  snapshot?: { id: string | null; state: Record<string, unknown> };
}

let nats: NatsFixture;
let node: NodeFixture;

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url });
});

afterAll(async () => {
  await node?.kill();
  await nats?.stop();
});

const pollUrl = (match: string, query: string): string => `${node.url}/matches/${match}/poll?${query}`;

test("a poll after an id returns the later events with the stream's ids, types, data and ts", async () => {
  const match = uniqueMatch("poll");
  const first = await publishOk(node.url, match, { type: "kickoff", state: { s: 0 } });
  const later: string[] = [];
  for (let i = 0; i < 5; i++) later.push(await publishOk(node.url, match, { type: i % 2 ? "card" : "goal", data: { i, text: `a\nb ${i}` }, state: { s: i } }));

  const answer = await getJson<PollAnswer>(pollUrl(match, `after=${first}&wait=0`));
  expect(answer.status).toBe(200);
  expect(answer.json.match).toBe(match);
  expect(answer.json.events.map((e) => e.id)).toEqual(later);
  expect(answer.json.next).toBe(later.at(-1)!);
  expect(answer.json.snapshot).toBeUndefined();

  const stream = await openSse(`${node.url}/matches/${match}/events`, { headers: { "last-event-id": first } });
  await stream.untilEvents(later.length);
  await stream.close();
  expect(answer.json.events.map((e) => [e.id, e.type, e.data, e.ts])).toEqual(
    stream.events.map((e) => {
      const d = dataOf<{ data: unknown; ts: number }>(e);
      return [e.lastEventId, e.type, d.data, d.ts];
    }),
  );

  // Following `next` gives nothing more (and does not wait with wait=0).
  const rest = await getJson<PollAnswer>(pollUrl(match, `after=${answer.json.next}&wait=0`));
  expect(rest.json.events).toEqual([]);
});

test(`a waiting poll (wait=${LONG_WAIT_MS}) answers as soon as an event is published`, async () => {
  const match = uniqueMatch("pollwait");
  const first = await publishOk(node.url, match, { type: "kickoff" });
  const startedAt = Date.now();
  const pending = getJson<PollAnswer>(pollUrl(match, `after=${first}&wait=${LONG_WAIT_MS}`)).then((a) => ({ ...a, at: Date.now() }));
  await Bun.sleep(300);
  const publishedAt = Date.now();
  const id = await publishOk(node.url, match, { type: "goal", data: { who: "nine" } });
  const answer = await pending;
  expect(answer.status).toBe(200);
  expect(answer.json.events.map((e) => [e.id, e.type, e.data])).toEqual([[id, "goal", { who: "nine" }]]);
  expect(answer.at - publishedAt).toBeLessThan(PROMPT_MS);
  expect(answer.at - startedAt).toBeLessThan(LONG_WAIT_MS);
  // It did wait for the event rather than answering empty at once.
  expect(answer.at - startedAt).toBeGreaterThanOrEqual(300);
});

test("a waiting poll with nothing published answers empty after its wait", async () => {
  const match = uniqueMatch("pollidle");
  const first = await publishOk(node.url, match, { type: "kickoff" });
  const startedAt = Date.now();
  const answer = await getJson<PollAnswer>(pollUrl(match, `after=${first}&wait=500`));
  const took = Date.now() - startedAt;
  expect(answer.json.events).toEqual([]);
  expect(took).toBeGreaterThanOrEqual(400);
  // `next` is what to pass as `after` next time: with nothing new it must still hold the position
  // (null would make a client following it verbatim ask with after=null and lose its place).
  expect(answer.json.next).toBe(first);
  expect(took).toBeLessThan(3000);
});

test("a poll without after includes the snapshot", async () => {
  const match = uniqueMatch("pollsnap");
  await publishOk(node.url, match, { type: "kickoff", state: { home: "X", score: 0 } });
  const latest = await publishOk(node.url, match, { type: "goal", state: { score: 1 } });
  await untilLatest(node.url, match, latest);
  const answer = await getJson<PollAnswer>(pollUrl(match, "wait=0"));
  expect(answer.status).toBe(200);
  expect(answer.json.snapshot).toEqual({ id: latest, state: { home: "X", score: 1 } });
  expect(answer.json.events).toEqual([]);
  expect(answer.json.next).toBe(latest);

  // And a match with no events yet: a snapshot without an id and state {}.
  const empty = await getJson<PollAnswer>(pollUrl(uniqueMatch("pollnone"), "wait=0"));
  expect(empty.json.snapshot).toEqual({ id: null, state: {} });
});
