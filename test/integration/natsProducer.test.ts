/**
 * Producers publishing straight to NATS (the subject and payload format of docs/api.md): a JetStream publish's
 * ack seq is the event id streams carry; payloads that are not valid events (not JSON, reserved type,
 * nested deeper than the HTTP door allows) are skipped alike by every reader, and the node goes on.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { logTag } from "../../src/match/event.ts";
import { MAX_JSON_DEPTH } from "../../src/match/jsonDepth.ts";
import { idOf } from "../helpers/eventIds.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { getJson, publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

/** A lone node stops its tail's consumer after a second of its own stores only (OWN_STORES_QUIET_MS), checked each tick. */
const TAIL_STOPS_WITHIN_MS = 10_000;
/** Far past any recursion limit of msgpackr or JSON.stringify (it crashed a node before the check). */
const HOSTILE_DEPTH = 5_000;

const { nats, node } = useNode();
let nc: NatsConnection;
const streams: SseConnection[] = [];

beforeAll(async () => {
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  for (const s of streams) await s.close();
  await nc?.close();
});

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

test("events published straight to JetStream stream with the ack's seq as id; invalid payloads are skipped", async () => {
  const match = uniqueMatch("direct");
  const conn = await openSse(`${node.url}/matches/${match}/events`);
  streams.push(conn);
  await conn.untilEvents(1);
  expect(conn.events[0]!.type).toBe("snapshot");
  const js = jetstream(nc);
  const subject = `touchline.events.${match}`;
  const send = (body: unknown) => js.publish(subject, typeof body === "string" ? body : JSON.stringify(body));

  const first = await send({ type: "goal", data: { team: "home" }, state: { homeScore: 1 } });
  await send("not json at all");
  await send({ type: "snapshot", data: null });
  await send({ type: "goal", data: nested(HOSTILE_DEPTH) });
  await send({ type: "card", data: { deep: nested(MAX_JSON_DEPTH + 1) } });
  const last = await send({ type: "card", data: { team: "away" } });
  // Ids are `<seq>@<tag>`: the ack's seq, and the tag of the stream the ack names (from its creation time).
  const tag = logTag(new Date((await (await jetstreamManager(nc)).streams.info(last.stream)).created));
  const idOfAck = (ack: { seq: number }) => idOf(ack.seq, tag);

  await conn.until(() => conn.events.some((e) => e.lastEventId === idOfAck(last)), 10_000, "the last event");
  const seen = conn.matchEvents.map((e) => [e.lastEventId, e.type]);
  expect(seen).toEqual([
    [idOfAck(first), "goal"],
    [idOfAck(last), "card"],
  ]);
  const state = await getJson<{ id: string; state: Record<string, unknown> }>(`${node.url}/matches/${match}`);
  expect(state.json.state).toEqual({ homeScore: 1 });
  expect(state.json.id).toBe(idOfAck(last));
  expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
});

test("a lone node that stopped reading its own stores back still delivers a producer's straight-to-NATS events, in log order with its own", async () => {
  const jsm = await jetstreamManager(nc);
  const consumersOnEvents = async () => (await jsm.streams.info("touchline_events")).state.consumer_count;
  const match = uniqueMatch("alone");
  const conn = await openSse(`${node.url}/matches/${match}/events`);
  streams.push(conn);
  await conn.untilEvents(1);
  // Only the node's own HTTP publishes for a while: its tail stops its consumer (src/bus/streamTail.ts).
  const deadline = Date.now() + TAIL_STOPS_WITHIN_MS;
  while ((await consumersOnEvents()) !== 0) {
    if (Date.now() > deadline) throw new Error("the lone node's tail kept its consumer");
    await publishOk(node.url, match, { type: "tick", data: null });
    await Bun.sleep(200);
  }
  const js = jetstream(nc);
  const tag = logTag(new Date((await jsm.streams.info("touchline_events")).created));
  // A producer's event with none of the node's after it (found by the tail's check), then one between two of the node's (a hole).
  const straight1 = await js.publish(`touchline.events.${match}`, JSON.stringify({ type: "goal", data: { n: 1 } }));
  await conn.until(() => conn.events.some((e) => e.lastEventId === idOf(straight1.seq, tag)), 5_000, "the straight event after a quiet spell");
  const own1 = await publishOk(node.url, match, { type: "goal", data: { n: 2 } });
  const straight2 = await js.publish(`touchline.events.${match}`, JSON.stringify({ type: "goal", data: { n: 3 } }));
  const own2 = await publishOk(node.url, match, { type: "goal", data: { n: 4 } });
  await conn.until(() => conn.events.some((e) => e.lastEventId === own2), 5_000, "the node's last event");
  expect(conn.matchEvents.map((e) => e.lastEventId).slice(-4)).toEqual([idOf(straight1.seq, tag), own1, idOf(straight2.seq, tag), own2]);
  const seqs = conn.matchEvents.map((e) => Number(e.lastEventId.split("@")[0]));
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  expect(new Set(conn.matchEvents.map((e) => e.lastEventId)).size).toBe(conn.matchEvents.length);
});
