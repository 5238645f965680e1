/**
 * Traces across processes: two real nodes export OTLP/HTTP to a receiver in this test. One publish
 * must be one trace spanning both processes, with the parent links docs/operators.md describes:
 *   POST /matches/{match}/events -> jetstream.store -> match.ingest (owner) -> feed.publish (owner)
 *   -> match.fanout (every other node), plus the owner's own match.fanout under its ingest.
 * A node with tracing switched off exports nothing and stores no trace headers.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { names } from "../../src/bus/subjects.ts";
import { ATTR, HTTP_ROUTE_PUBLISH, SPAN } from "../../src/telemetry/spanNames.ts";
import { startNats, startNode, waitForClusterSize, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../helpers/otlpReceiver.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { seqOf } from "../helpers/eventIds.ts";
import { getJson, publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(45_000);

const SERVICE_NAME = "touchline-trace-test";
const NAMESPACE_ON = "trace_on";
const NAMESPACE_OFF = "trace_off";
/** Short batch delay so spans reach the receiver within the test. */
const BATCH_DELAY_MS = 100;
/** How long the tracing-off node is watched for an export that must not come (many batch delays). */
const QUIET_PERIOD_MS = 20 * BATCH_DELAY_MS;
const SPAN_WAIT_MS = 10_000;
const HTTP_PUBLISH_SPAN = `POST ${HTTP_ROUTE_PUBLISH}`;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

// OTLP span kinds.
const KIND_INTERNAL = 1;
const KIND_SERVER = 2;
const KIND_CLIENT = 3;
const KIND_PRODUCER = 4;
const KIND_CONSUMER = 5;

let nats: NatsFixture;
let receiver: OtlpReceiver;
let quietReceiver: OtlpReceiver;
let traced: NodeFixture[] = [];
let untraced: NodeFixture | undefined;
let nc: NatsConnection | undefined;
const streams: SseConnection[] = [];

beforeAll(async () => {
  [nats, receiver, quietReceiver] = await Promise.all([startNats(), startOtlpReceiver(), startOtlpReceiver()]);
  const tracingOn = {
    TOUCHLINE_NAMESPACE: NAMESPACE_ON,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: SERVICE_NAME,
    OTEL_BSP_SCHEDULE_DELAY: String(BATCH_DELAY_MS),
    OTEL_SDK_DISABLED: "false",
    OTEL_TRACES_EXPORTER: "otlp",
    OTEL_TRACES_SAMPLER: "parentbased_always_on",
  };
  // An endpoint is set but the SDK is switched off: the node must behave as if none were.
  const tracingOff = {
    TOUCHLINE_NAMESPACE: NAMESPACE_OFF,
    OTEL_EXPORTER_OTLP_ENDPOINT: quietReceiver.url,
    OTEL_BSP_SCHEDULE_DELAY: String(BATCH_DELAY_MS),
    OTEL_SDK_DISABLED: "true",
  };
  const started = await Promise.all([
    startNode({ natsUrl: nats.url, env: tracingOn }),
    startNode({ natsUrl: nats.url, env: tracingOn }),
    startNode({ natsUrl: nats.url, env: tracingOff }),
  ]);
  traced = started.slice(0, 2);
  untraced = started[2];
  await waitForClusterSize(traced, 2);
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  for (const s of streams) await s.close();
  await nc?.close();
  await Promise.all([...traced, ...(untraced ? [untraced] : [])].map((n) => n.kill()));
  await Promise.all([receiver?.stop(), quietReceiver?.stop()]);
  await nats?.stop();
});

async function ownerAndFollower(match: string): Promise<{ owner: NodeFixture; follower: NodeFixture }> {
  const answer = await getJson<{ owner: string }>(`${traced[0]!.url}/cluster/owner/${match}`);
  const owner = traced.find((n) => n.nodeId === answer.json.owner);
  const follower = traced.find((n) => n.nodeId !== answer.json.owner);
  if (!owner || !follower) throw new Error(`owner ${answer.json.owner} is not one of the two traced nodes`);
  return { owner, follower };
}

async function subscribe(url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  const s = await openSse(url, { headers });
  streams.push(s);
  return s;
}

/** Waits until the stream has the event with this id. */
function untilEvent(s: SseConnection, id: string): Promise<void> {
  return s.until(() => s.events.some((e) => e.lastEventId === id), SPAN_WAIT_MS, `event ${id}`);
}

/** The trace headers JetStream stored with an event (what the owner's reader sees). */
async function storedTraceparent(namespace: string, id: string): Promise<string | undefined> {
  if (!nc) throw new Error("no NATS connection");
  const jsm = await jetstreamManager(nc);
  const stored = await jsm.streams.getMessage(names(namespace).stream, { seq: seqOf(id) });
  return stored?.header?.get("traceparent") || undefined;
}

const nodeOf = (s: ReceivedSpan): unknown => s.resource["service.instance.id"];

/** Finds exactly one span; the message lists what there is when it is missing or ambiguous. */
function one(spans: ReceivedSpan[], what: string, pred: (s: ReceivedSpan) => boolean): ReceivedSpan {
  const found = spans.filter(pred);
  if (found.length !== 1) {
    const seen = spans.map((s) => `${s.name}@${String(nodeOf(s))}`).join(", ");
    throw new Error(`expected one ${what}, found ${found.length}; spans: ${seen}`);
  }
  return found[0]!;
}

/**
 * The spans of one event of one match (and its publish request), once `expected` [name, node] pairs
 * have all arrived: each process exports on its own schedule, so one node's spans may come first.
 */
async function spansOfEvent(match: string, id: string, expected: [string, NodeFixture][]): Promise<ReceivedSpan[]> {
  const seq = seqOf(id);
  const ofEvent = (s: ReceivedSpan) => s.attributes[ATTR.match] === match && (s.attributes[ATTR.eventSeq] === seq || s.name === HTTP_PUBLISH_SPAN);
  await receiver.waitFor(
    (spans) => expected.every(([name, node]) => spans.some((s) => ofEvent(s) && s.name === name && nodeOf(s) === node.nodeId)),
    SPAN_WAIT_MS,
  );
  return receiver.spans.filter(ofEvent);
}

describe("tracing across two nodes", () => {
  test("a publish through the owner is one trace down to the other node's fan-out, with the right parents", async () => {
    const match = uniqueMatch("traced");
    const { owner, follower } = await ownerAndFollower(match);
    const s = await subscribe(`${follower.url}/matches/${match}/events`);
    await s.until(() => s.snapshots.length === 1, SPAN_WAIT_MS, "snapshot");

    const id = await publishOk(owner.url, match, { type: "goal", data: { player: "Saka" }, state: { homeScore: 1 } });
    await untilEvent(s, id);
    const spans = await spansOfEvent(match, id, [
      [HTTP_PUBLISH_SPAN, owner],
      [SPAN.store, owner],
      [SPAN.ingest, owner],
      [SPAN.feedPublish, owner],
      [SPAN.fanOut, owner],
      [SPAN.fanOut, follower],
    ]);

    const http = one(spans, "http span", (x) => x.name === HTTP_PUBLISH_SPAN);
    const store = one(spans, "store span", (x) => x.name === SPAN.store);
    const ingest = one(spans, "ingest span", (x) => x.name === SPAN.ingest);
    const feed = one(spans, "feed publish span", (x) => x.name === SPAN.feedPublish);
    const ownerFanOut = one(spans, "owner fan-out", (x) => x.name === SPAN.fanOut && nodeOf(x) === owner.nodeId);
    const followerFanOut = one(spans, "follower fan-out", (x) => x.name === SPAN.fanOut && nodeOf(x) === follower.nodeId);

    // One trace, spanning both processes.
    const traceId = http.traceId;
    for (const x of [store, ingest, feed, ownerFanOut, followerFanOut]) expect(x.traceId).toBe(traceId);
    expect(new Set(spans.map(nodeOf))).toEqual(new Set([owner.nodeId, follower.nodeId]));
    for (const x of spans) expect(x.serviceName).toBe(SERVICE_NAME);

    // Parent links.
    expect(http.parentSpanId).toBeUndefined();
    expect(store.parentSpanId).toBe(http.spanId);
    expect(ingest.parentSpanId).toBe(store.spanId);
    expect(feed.parentSpanId).toBe(ingest.spanId);
    expect(ownerFanOut.parentSpanId).toBe(ingest.spanId);
    expect(followerFanOut.parentSpanId).toBe(feed.spanId);

    // Where each ran, what kind it is, and what it says.
    for (const x of [http, store, ingest, feed, ownerFanOut]) expect(nodeOf(x)).toBe(owner.nodeId);
    expect([http.kind, store.kind, ingest.kind, feed.kind, ownerFanOut.kind, followerFanOut.kind]).toEqual([
      KIND_SERVER,
      KIND_PRODUCER,
      KIND_CONSUMER,
      KIND_PRODUCER,
      KIND_INTERNAL,
      KIND_CONSUMER,
    ]);
    expect(http.attributes[ATTR.httpStatus]).toBe(201);
    expect(http.attributes[ATTR.httpRoute]).toBe(HTTP_ROUTE_PUBLISH);
    expect(store.attributes[ATTR.duplicate]).toBe(false);
    expect(followerFanOut.attributes[ATTR.subscribers]).toBe(1);
    expect(followerFanOut.attributes[ATTR.role]).toBe("follower");
    expect(ownerFanOut.attributes[ATTR.subscribers]).toBe(0);

    // The stored message carries the store span's context: that is what the owner's reader continued.
    const traceparent = await storedTraceparent(NAMESPACE_ON, id);
    expect(TRACEPARENT.exec(traceparent ?? "")?.slice(1, 3)).toEqual([traceId, store.spanId]);

    // The subscriber's join and the owner taking the match have spans of their own.
    await receiver.waitFor((all) => all.some((x) => x.name === SPAN.subscribe && x.attributes[ATTR.match] === match), SPAN_WAIT_MS);
    const join = one(receiver.spans, "subscribe span", (x) => x.name === SPAN.subscribe && x.attributes[ATTR.match] === match);
    expect(nodeOf(join)).toBe(follower.nodeId);
    expect(join.attributes[ATTR.subscribeStart]).toBe("snapshot");
    expect(join.attributes[ATTR.resumeAfter]).toBeUndefined();
    const acquired = receiver.spans.filter(
      (x) => x.name === SPAN.leaseAcquire && x.attributes[ATTR.match] === match && x.attributes[ATTR.leaseOutcome] === "acquired",
    );
    expect(acquired.map(nodeOf)).toEqual([owner.nodeId]);
    expect(acquired[0]?.kind).toBe(KIND_CLIENT);
    expect(acquired[0]?.parentSpanId).toBeUndefined();
    expect(typeof acquired[0]?.attributes[ATTR.leaseEpoch]).toBe("number");
  });

  test("a publish through the other node crosses twice (store there, ingest on the owner, fan-out back there); a resume gets a replay span", async () => {
    const match = uniqueMatch("crossing");
    const { owner, follower } = await ownerAndFollower(match);
    const live = await subscribe(`${follower.url}/matches/${match}/events`);
    await live.until(() => live.snapshots.length === 1, SPAN_WAIT_MS, "snapshot");

    const first = await publishOk(follower.url, match, { type: "kickoff", data: null });
    const second = await publishOk(follower.url, match, { type: "goal", data: { minute: 3 } });
    await untilEvent(live, second);
    const spans = await spansOfEvent(match, second, [
      [SPAN.store, follower],
      [SPAN.ingest, owner],
      [SPAN.feedPublish, owner],
      [SPAN.fanOut, follower],
    ]);
    const store = one(spans, "store span", (x) => x.name === SPAN.store);
    const ingest = one(spans, "ingest span", (x) => x.name === SPAN.ingest);
    const feed = one(spans, "feed publish span", (x) => x.name === SPAN.feedPublish);
    const followerFanOut = one(spans, "follower fan-out", (x) => x.name === SPAN.fanOut && nodeOf(x) === follower.nodeId);
    expect([nodeOf(store), nodeOf(ingest), nodeOf(feed), nodeOf(followerFanOut)]).toEqual([follower.nodeId, owner.nodeId, owner.nodeId, follower.nodeId]);
    expect(ingest.parentSpanId).toBe(store.spanId);
    expect(followerFanOut.parentSpanId).toBe(feed.spanId);
    expect(new Set([store, ingest, feed, followerFanOut].map((x) => x.traceId)).size).toBe(1);

    // A client resuming after the first event is served the second from memory, under its join.
    const resumed = await subscribe(`${follower.url}/matches/${match}/events?lastEventId=${first}`);
    await untilEvent(resumed, second);
    const isResume = (x: ReceivedSpan) => x.name === SPAN.subscribe && x.attributes[ATTR.match] === match && x.attributes[ATTR.resumeAfter] === seqOf(first);
    const isReplay = (x: ReceivedSpan) => x.name === SPAN.replay && x.attributes[ATTR.match] === match;
    await receiver.waitFor((all) => all.some(isResume) && all.some(isReplay), SPAN_WAIT_MS);
    const join = one(receiver.spans, "resume span", isResume);
    const replay = one(receiver.spans, "replay span", isReplay);
    expect(join.attributes[ATTR.subscribeStart]).toBe("memory");
    expect(replay.parentSpanId).toBe(join.spanId);
    expect(replay.attributes[ATTR.replaySource]).toBe("memory");
    expect(replay.attributes[ATTR.replayEvents]).toBe(1);
  });

  test("a stream request that carries traceparent gets its subscribe spans in the caller's trace (single and multiplexed)", async () => {
    const [a, b] = [uniqueMatch("callerA"), uniqueMatch("callerB")];
    const node = traced[0]!;
    const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const callerSpan = "00f067aa0ba902b7";
    const headers = { traceparent: `00-${callerTrace}-${callerSpan}-01` };
    const single = await subscribe(`${node.url}/matches/${a}/events`, headers);
    const multi = await subscribe(`${node.url}/events?match=${a}&match=${b}`, { traceparent: `00-${callerTrace}-${"1".repeat(16)}-01` });
    const plain = await subscribe(`${node.url}/matches/${b}/events`);
    await Promise.all([single, plain].map((s) => s.until(() => s.snapshots.length === 1, SPAN_WAIT_MS, "snapshot")));
    await multi.until(() => multi.snapshots.length === 2, SPAN_WAIT_MS, "two snapshots");
    const joinsOf = (m: string) => receiver.spans.filter((x) => x.name === SPAN.subscribe && x.attributes[ATTR.match] === m);
    await receiver.waitFor(() => joinsOf(a).length === 2 && joinsOf(b).length === 2, SPAN_WAIT_MS);
    const parents = [...joinsOf(a), ...joinsOf(b)].map((x) => `${x.traceId}/${x.parentSpanId ?? "root"}`).sort();
    // Three joins continue the callers' trace under their span ids; the request without one starts its own trace.
    const inCaller = parents.filter((p) => p.startsWith(callerTrace));
    expect(inCaller).toEqual([`${callerTrace}/${"1".repeat(16)}`, `${callerTrace}/${"1".repeat(16)}`, `${callerTrace}/${callerSpan}`].sort());
    expect(parents.filter((p) => !p.startsWith(callerTrace)).map((p) => p.split("/")[1])).toEqual(["root"]);
  });
});

describe("tracing off", () => {
  test("a node with OTEL_SDK_DISABLED=true exports nothing and stores no trace headers, though an endpoint is set", async () => {
    const node = untraced!;
    const match = uniqueMatch("untraced");
    const s = await subscribe(`${node.url}/matches/${match}/events`);
    await s.until(() => s.snapshots.length === 1, SPAN_WAIT_MS, "snapshot");
    const id = await publishOk(node.url, match, { type: "goal", data: null });
    await untilEvent(s, id);
    await Bun.sleep(QUIET_PERIOD_MS);
    expect(quietReceiver.requests).toBe(0);
    expect(quietReceiver.spans).toHaveLength(0);
    expect(await storedTraceparent(NAMESPACE_OFF, id)).toBeUndefined();
  });
});
