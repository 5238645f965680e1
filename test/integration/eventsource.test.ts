/**
 * The stream read by the `eventsource` npm package, a WHATWG EventSource nobody here wrote: ids, event
 * names, data with line breaks and field-like text surviving the trip, and the package's own reconnect
 * with Last-Event-ID after the node is replaced (SIGTERM, new node on the same port, same NATS).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { EventSource } from "eventsource";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { publishOk, uniqueMatch, untilLatest } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

/** Small, so the package reconnects quickly after the node goes away. */
const RETRY_MS = 200;

let nats: NatsFixture;
let node: NodeFixture;

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url, env: { RETRY_MS: String(RETRY_MS) } });
});

afterAll(async () => {
  if (node?.proc.exitCode === null) await node.kill();
  await nats?.stop();
});

interface Seen {
  type: string;
  id: string;
  data: { match: string; data?: unknown; state?: unknown; ts?: number };
}

/** Records what an EventSource dispatches for the given event names (and any unnamed `message`). */
function record(es: EventSource, names: string[]): Seen[] {
  const seen: Seen[] = [];
  for (const name of [...names, "message"]) {
    es.addEventListener(name, (e) => {
      const m = e as MessageEvent<string>;
      seen.push({ type: m.type, id: m.lastEventId, data: JSON.parse(m.data) as Seen["data"] });
    });
  }
  return seen;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** Strings that would break a naive encoder: line ends of every kind, and text that looks like SSE fields. */
const TRICKY = [
  "first line\nsecond line",
  "crlf\r\nline",
  "lone cr\rline",
  "data: injected\n\nid: 999999\nevent: snapshot\n\n",
  ": not a comment\nretry: 1",
  "unicode \u2028 line and \u2029 paragraph separators, é, 🎉",
  "",
  " leading space",
  "trailing newline\n",
];

describe("read by the eventsource package", () => {
  test("ids, event names and data with line breaks round-trip", async () => {
    const match = uniqueMatch("es");
    const kickoff = await publishOk(node.url, match, { type: "kickoff", state: { home: "Home\nTown", away: "Away" } });
    await untilLatest(node.url, match, kickoff);
    const es = new EventSource(`${node.url}/matches/${match}/events`);
    const seen = record(es, ["snapshot", "goal", "card"]);
    await until(() => seen.length >= 1, 5000, "the snapshot");

    const published: { id: string; type: string; data: unknown }[] = [];
    for (const [i, text] of TRICKY.entries()) {
      const type = i % 2 ? "card" : "goal";
      const data = { text, lines: text.split("\n"), n: i };
      published.push({ id: await publishOk(node.url, match, { type, data, state: { last: text } }), type, data });
    }
    await until(() => seen.length >= 1 + published.length, 5000, "the published events");
    await Bun.sleep(200);
    es.close();

    expect(seen[0]).toEqual({ type: "snapshot", id: kickoff, data: { match, state: { home: "Home\nTown", away: "Away" } } });
    const live = seen.slice(1);
    expect(live.map((e) => [e.type, e.id, e.data.match, e.data.data])).toEqual(published.map((p) => [p.type, p.id, match, p.data]));
    expect(live.map((e) => e.data.state)).toEqual(TRICKY.map((t) => ({ last: t })));
    expect(seen.filter((e) => e.type === "message")).toEqual([]);
  });

  test("after the node is replaced, the package reconnects with Last-Event-ID and gets exactly the missed events", async () => {
    const match = uniqueMatch("esre");
    const first = await publishOk(node.url, match, { type: "kickoff" });
    await untilLatest(node.url, match, first);

    // Hold the package's reconnect until the missed events exist, and see what it sends.
    const sentLastEventIds: (string | null)[] = [];
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const es = new EventSource(`${node.url}/matches/${match}/events`, {
      fetch: async (input, init) => {
        sentLastEventIds.push(new Headers(init.headers).get("last-event-id"));
        if (sentLastEventIds.length > 1) await gate;
        return fetch(input, init);
      },
    });
    const seen = record(es, ["snapshot", "goal"]);
    let errors = 0;
    es.addEventListener("error", () => errors++);
    await until(() => seen.length >= 1, 5000, "the snapshot");
    const before = [await publishOk(node.url, match, { type: "goal", data: { n: 1 } }), await publishOk(node.url, match, { type: "goal", data: { n: 2 } })];
    await until(() => seen.length >= 3, 5000, "two live events");

    const port = node.port;
    expect(await node.stop()).toBe(0);
    await until(() => errors >= 1, 5000, "the package to notice the end of the stream");
    node = await startNode({ natsUrl: nats.url, port, env: { RETRY_MS: String(RETRY_MS) } });
    const missed = [];
    for (let n = 3; n <= 5; n++) missed.push(await publishOk(node.url, match, { type: "goal", data: { n } }));
    openGate();
    await until(() => seen.length >= 3 + missed.length, 10_000, "the missed events");
    const live = await publishOk(node.url, match, { type: "goal", data: { n: 6 } });
    await until(() => seen.length >= 4 + missed.length, 5000, "a live event after the resume");
    await Bun.sleep(200);
    es.close();

    expect(sentLastEventIds.length).toBeGreaterThanOrEqual(2);
    expect(sentLastEventIds[0]).toBeNull();
    expect(sentLastEventIds.slice(1).every((id) => id === before[1])).toBe(true);
    expect(seen.map((e) => [e.type, e.id])).toEqual([["snapshot", first], ...[...before, ...missed, live].map((id) => ["goal", id])]);
    expect(seen.slice(1).map((e) => (e.data.data as { n: number }).n)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
