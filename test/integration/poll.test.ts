/**
 * The long-polling fallback `GET /matches/{match}/poll?after=<id>&wait=<ms>`: the same ids as the stream
 * (either way round), a waiting poll answered as soon as an event is published, a wait bounded by
 * POLL_WAIT, and a snapshot when `after` is missing.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { dataOf, openSse } from "../helpers/sse.ts";
import { getJson, publishOk, uniqueMatch, untilLatest } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

/** The node's POLL_WAIT: the default wait, and the most a poll may ask for. */
const POLL_WAIT_MS = 3000;
/** A waiting poll must answer this soon after the publish, far inside its wait. */
const PROMPT_MS = 500;
/** How late a bounded wait may end on a shared machine. */
const WAIT_LATENESS_MS = 1000;

interface PollAnswer {
  match: string;
  events: { id: string; type: string; data: unknown; ts: number; state?: unknown }[];
  next: string | null;
  snapshot?: { id: string | null; state: Record<string, unknown> };
}

const { node } = useNode({ env: { POLL_WAIT: `${POLL_WAIT_MS}ms` } });

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

test(`a waiting poll (POLL_WAIT ${POLL_WAIT_MS} ms) answers within ${PROMPT_MS} ms of a publish`, async () => {
  const match = uniqueMatch("pollwait");
  const first = await publishOk(node.url, match, { type: "kickoff" });
  const startedAt = Date.now();
  const pending = getJson<PollAnswer>(pollUrl(match, `after=${first}`)).then((a) => ({ ...a, at: Date.now() }));
  await Bun.sleep(300);
  const publishedAt = Date.now();
  const id = await publishOk(node.url, match, { type: "goal", data: { who: "nine" } });
  const answer = await pending;
  expect(answer.status).toBe(200);
  expect(answer.json.events.map((e) => [e.id, e.type, e.data])).toEqual([[id, "goal", { who: "nine" }]]);
  expect(answer.at - publishedAt).toBeLessThan(PROMPT_MS);
  expect(answer.at - startedAt).toBeLessThan(POLL_WAIT_MS);
  console.log(`waiting poll answered ${answer.at - publishedAt} ms after the publish`);
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

test(`with nothing published a poll answers empty after POLL_WAIT (${POLL_WAIT_MS} ms), however long it asked to wait`, async () => {
  const match = uniqueMatch("pollcap");
  const first = await publishOk(node.url, match, { type: "kickoff" });
  const timed = async (query: string) => {
    const startedAt = Date.now();
    const answer = await getJson<PollAnswer>(pollUrl(match, query));
    return { answer, took: Date.now() - startedAt };
  };
  const [byDefault, askedLonger] = await Promise.all([timed(`after=${first}`), timed(`after=${first}&wait=600000`)]);
  for (const { answer, took } of [byDefault, askedLonger]) {
    expect(answer.status).toBe(200);
    expect(answer.json.events).toEqual([]);
    expect(answer.json.next).toBe(first);
    expect(took).toBeGreaterThanOrEqual(POLL_WAIT_MS - 100);
    expect(took).toBeLessThan(POLL_WAIT_MS + WAIT_LATENESS_MS);
  }
});

test("ids are interchangeable both ways: a stream's id resumes a poll, a poll's id resumes a stream", async () => {
  const match = uniqueMatch("pollswap");
  const kickoff = await publishOk(node.url, match, { type: "kickoff" });
  await untilLatest(node.url, match, kickoff);

  // Stream → poll: ids read off a stream are `after` positions for a poll.
  const stream = await openSse(`${node.url}/matches/${match}/events`);
  await stream.untilEvents(1);
  const snapshotId = stream.events[0]!.lastEventId;
  expect(snapshotId).toBe(kickoff);
  const e1 = await publishOk(node.url, match, { type: "goal", data: { n: 1 } });
  const e2 = await publishOk(node.url, match, { type: "card", data: { n: 2 } });
  await stream.untilEvents(3);
  await stream.close();
  const streamIds = stream.matchEvents.map((e) => e.lastEventId);
  expect(streamIds).toEqual([e1, e2]);
  const afterSnapshot = await getJson<PollAnswer>(pollUrl(match, `after=${snapshotId}&wait=0`));
  expect(afterSnapshot.json.events.map((e) => e.id)).toEqual(streamIds);
  const afterFirst = await getJson<PollAnswer>(pollUrl(match, `after=${streamIds[0]}&wait=0`));
  expect(afterFirst.json.events.map((e) => [e.id, e.type, e.data])).toEqual([[e2, "card", { n: 2 }]]);

  // Poll → stream: a poll's `next` resumes a stream, by header or by query, with no snapshot and no repeat.
  const e3 = await publishOk(node.url, match, { type: "goal", data: { n: 3 } });
  const polled = await getJson<PollAnswer>(pollUrl(match, `after=${e1}&wait=0`));
  expect(polled.json.events.map((e) => e.id)).toEqual([e2, e3]);
  const next = polled.json.next!;
  const e4 = await publishOk(node.url, match, { type: "card", data: { n: 4 } });
  for (const resume of [{ headers: { "last-event-id": next } }, { query: `?lastEventId=${next}` }]) {
    const resumed = await openSse(
      `${node.url}/matches/${match}/events${"query" in resume ? resume.query : ""}`,
      "headers" in resume ? { headers: resume.headers } : {},
    );
    await resumed.untilEvents(1);
    await Bun.sleep(100); // a repeat or a stray snapshot would arrive now
    await resumed.close();
    expect(resumed.events.map((e) => [e.type, e.lastEventId])).toEqual([["card", e4]]);
  }
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
