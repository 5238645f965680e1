/**
 * Matches end: a publish with `"final": true` ends its match. Stock EventSources (the `eventsource`
 * package) see the final event, `touchline.end`, the end of the stream, and then stop for good on the
 * 204 their reconnect gets; a new viewer gets the final snapshot and the end; a multiplexed stream goes
 * on with its other matches. Publishing after the end answers 409; polls and reads say `ended`.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { EventSource } from "eventsource";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { getJson, publish, publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(60_000);

let nats: NatsFixture;
let node: NodeFixture;

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url, env: { RETRY_MS: "200" } });
});

afterAll(async () => {
  await node?.kill();
  await nats?.stop();
});

interface Watcher {
  es: EventSource;
  /** Every event as `type` (match-qualified on multiplexed streams), in order. */
  seen: string[];
  opens: number;
  closedForGood: Promise<void>;
}

function watch(url: string, types: string[]): Watcher {
  const es = new EventSource(url);
  const w: Watcher = { es, seen: [], opens: 0, closedForGood: Promise.resolve() };
  es.addEventListener("open", () => w.opens++);
  for (const t of ["snapshot", "touchline.end", ...types]) {
    es.addEventListener(t, (e) => w.seen.push(`${t}:${(JSON.parse(e.data) as { match: string }).match}`));
  }
  w.closedForGood = new Promise((resolve) =>
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED) resolve();
    }),
  );
  return w;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

test("a single-match stream: the final event, touchline.end, the stream ends, and the reconnect's 204 stops the EventSource", async () => {
  const m = uniqueMatch("end");
  await publishOk(node.url, m, { type: "kickoff" });
  const w = watch(`${node.url}/matches/${m}/events`, ["goal", "fulltime"]);
  await until(() => w.seen.length === 1, 5_000, "the snapshot");
  await publishOk(node.url, m, { type: "goal" });
  const finalId = await publishOk(node.url, m, { type: "fulltime", state: { status: "full-time" }, final: true });
  await w.closedForGood;
  expect(w.seen).toEqual([`snapshot:${m}`, `goal:${m}`, `fulltime:${m}`, `touchline.end:${m}`]);
  expect(w.opens).toBe(1);
  // What its reconnect got: 204, by header and by query.
  expect((await fetch(`${node.url}/matches/${m}/events`, { headers: { "Last-Event-ID": finalId } })).status).toBe(204);
  expect((await fetch(`${node.url}/matches/${m}/events?lastEventId=${encodeURIComponent(finalId)}`)).status).toBe(204);

  // A new viewer: the final snapshot and the end; its reconnect (with the snapshot's id) gets 204 too.
  const late = watch(`${node.url}/matches/${m}/events`, ["goal"]);
  await late.closedForGood;
  expect(late.seen).toEqual([`snapshot:${m}`, `touchline.end:${m}`]);

  // A retry of the final event (same key) is a duplicate; anything else after the end is refused.
  const last = uniqueMatch("endkey");
  const keyed = await publishOk(node.url, last, { type: "fulltime", final: true, key: "ft" });
  const retried = await publish(node.url, last, { type: "fulltime", final: true, key: "ft" });
  expect(retried.status).toBe(200);
  expect(retried.json).toEqual({ id: keyed, duplicate: true });
  expect((await publish(node.url, last, { type: "goal", key: "other" })).status).toBe(409);
  // Publishing after the end is refused; reads and polls say the match ended.
  const refused = await publish(node.url, m, { type: "goal" });
  expect(refused.status).toBe(409);
  expect(refused.json).toMatchObject({ error: "match_ended" });
  const state = await getJson<{ id: string; ended?: boolean; state: { status?: string } }>(`${node.url}/matches/${m}`);
  expect(state.json).toMatchObject({ id: finalId, ended: true, state: { status: "full-time" } });
  const poll = await getJson<{ events: { id: string }[]; ended?: boolean }>(`${node.url}/matches/${m}/poll?after=0&wait=0`);
  expect(poll.json.ended).toBe(true);
  expect(poll.json.events.at(-1)?.id).toBe(finalId);
  const listed = await getJson<{ matches: { match: string; ended?: boolean }[] }>(`${node.url}/matches?limit=1000`);
  expect(listed.json.matches.find((e) => e.match === m)?.ended).toBe(true);
});

test("a multiplexed stream: the ended match gets touchline.end and the other goes on; with both ended, the resume gets 204", async () => {
  const [a, b] = [uniqueMatch("enda"), uniqueMatch("endb")];
  await publishOk(node.url, a, { type: "kickoff" });
  await publishOk(node.url, b, { type: "kickoff" });
  const w = watch(`${node.url}/events?match=${a}&match=${b}`, ["goal", "fulltime"]);
  await until(() => w.seen.length === 2, 5_000, "two snapshots");
  await publishOk(node.url, a, { type: "fulltime", final: true });
  await publishOk(node.url, b, { type: "goal" });
  await until(() => w.seen.includes(`goal:${b}`), 5_000, "b's goal after a ended");
  expect(w.seen.slice(2)).toEqual([`fulltime:${a}`, `touchline.end:${a}`, `goal:${b}`]);
  await publishOk(node.url, b, { type: "fulltime", final: true });
  await w.closedForGood;
  expect(w.seen.slice(5)).toEqual([`fulltime:${b}`, `touchline.end:${b}`]);
  expect(w.opens).toBe(1);
});

test("a batch: an item for an ended match, or after a final item of its match, answers 409 naming it and stores nothing", async () => {
  const m = uniqueMatch("endbatch");
  const post = (items: unknown) =>
    fetch(`${node.url}/events`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(items) });
  const inBatch = await post([
    { match: m, type: "fulltime", final: true },
    { match: m, type: "goal" },
  ]);
  expect(inBatch.status).toBe(409);
  expect(await inBatch.json()).toMatchObject({ error: "match_ended", index: 1 });
  expect((await post([{ match: m, type: "fulltime", final: true }])).status).toBe(201);
  const after = await post([
    { match: uniqueMatch("other"), type: "goal" },
    { match: m, type: "goal" },
  ]);
  expect(after.status).toBe(409);
  expect(await after.json()).toMatchObject({ error: "match_ended", index: 1 });
});
