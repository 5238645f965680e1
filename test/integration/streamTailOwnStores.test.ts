/**
 * StreamTail handing on a lone node's own stores from their acknowledgements (src/bus/streamTail.ts),
 * against a real JetStream nats-server: once only its own stores were seen for a while the consumer is
 * gone from the server and its stores are still handed on, in order, once; a store of another writer
 * (another connection, as a stale node or a producer publishing straight to NATS would) brings the
 * consumer back, whether this node stores after it or stays quiet, and every message is handed on once,
 * in stream order; a second member in the ring brings it back too; a duplicate is not handed on again.
 */
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DirectGets } from "../../src/bus/directGets.ts";
import { JetStreamPublisher } from "../../src/bus/jetStreamPublisher.ts";
import { READER_API_TIMEOUT_MS, type StoredMessage } from "../../src/bus/orderedReader.ts";
import { OWN_STORES_CHECK_MS, OWN_STORES_QUIET_MS, StreamTail } from "../../src/bus/streamTail.ts";
import { startNats, waitFor, type NatsFixture } from "../helpers/cluster.ts";

setDefaultTimeout(30_000);

const STREAM = "TAILTEST";
const PREFIX = "tailtest.";
const ACK_TIMEOUT_MS = 5_000;
/** Long enough for the tail to judge an interval quiet and stop its consumer. */
const QUIET_WAIT_MS = 2 * OWN_STORES_QUIET_MS + 4 * OWN_STORES_CHECK_MS;

let nats: NatsFixture;
let nc: NatsConnection;
let other: NatsConnection;
let jsm: JetStreamManager;
let otherJs: JetStreamClient;
let publisher: JetStreamPublisher;
let gets: DirectGets;

interface Running {
  tail: StreamTail;
  seen: { seq: number; subject: string; text: string }[];
  alone: { value: boolean };
  problems: string[];
}
let running: Running | undefined;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  other = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  otherJs = jetstream(other);
  await jsm.streams.add({ name: STREAM, subjects: [`${PREFIX}>`], allow_direct: true, duplicate_window: 60_000_000_000 });
  publisher = new JetStreamPublisher(nc, ACK_TIMEOUT_MS);
  gets = new DirectGets(nc, ACK_TIMEOUT_MS);
});

afterEach(() => {
  running?.tail.stop();
  running = undefined;
});

afterAll(async () => {
  publisher?.close();
  gets?.close();
  await other?.close();
  await nc?.close();
  await nats?.stop();
});

async function startTail(alone = true): Promise<Running> {
  const seen: Running["seen"] = [];
  const problems: string[] = [];
  const flag = { value: alone };
  const text = new TextDecoder();
  const tail = new StreamTail(
    { nc, jsm: await jetstreamManager(nc, { timeout: READER_API_TIMEOUT_MS, checkAPI: false }), onProblem: (what) => problems.push(what) },
    STREAM,
    `${PREFIX}>`,
    (subject) => subject.slice(PREFIX.length),
    (_match, m: StoredMessage) => seen.push({ seq: m.seq, subject: m.subject, text: text.decode(m.data) }),
    {
      alone: () => flag.value,
      inFlight: () => publisher.inFlight,
      firstStoredAfter: (afterSeq) => gets.firstSeqAfter(STREAM, `${PREFIX}>`, afterSeq),
    },
  );
  await tail.start();
  running = { tail, seen, alone: flag, problems };
  return running;
}

/** Stores as EventLog.store does: the acknowledgement tells the tail. */
async function storeOwn(tail: StreamTail, match: string, text: string, msgID?: string): Promise<number> {
  const subject = PREFIX + match;
  const ack = await publisher.publish(subject, text, msgID ? { msgID } : {});
  tail.ownStored(subject, ack.seq, ack.duplicate, text, undefined);
  return ack.seq;
}

async function storeOther(match: string, text: string): Promise<number> {
  return (await otherJs.publish(PREFIX + match, text)).seq;
}

async function consumersOnServer(): Promise<number> {
  return (await jsm.streams.info(STREAM)).state.consumer_count;
}

/** Every message of the stream after `after`, in stream order, as the tail should have handed them on. */
async function storedAfter(after: number): Promise<{ seq: number; subject: string; text: string }[]> {
  const last = (await jsm.streams.info(STREAM)).state.last_seq;
  const out: { seq: number; subject: string; text: string }[] = [];
  for (let seq = after + 1; seq <= last; seq++) {
    const m = await jsm.streams.getMessage(STREAM, { seq });
    if (m) out.push({ seq: m.seq, subject: m.subject, text: m.string() });
  }
  return out;
}

test("alone with only its own stores: the consumer goes, and its stores are still handed on in order, once", async () => {
  const { tail, seen } = await startTail();
  const from = tail.position;
  await storeOwn(tail, "a", "first");
  expect(tail.fedByAcks).toBe(false);
  await waitFor(async () => tail.fedByAcks, QUIET_WAIT_MS * 2, "the tail to hand on from acknowledgements");
  expect(await consumersOnServer()).toBe(0);
  const seqs = await Promise.all(Array.from({ length: 50 }, (_, i) => storeOwn(tail, `m${i % 5}`, `own ${i}`)));
  expect(tail.fedByAcks).toBe(true);
  expect(tail.position).toBe(Math.max(...seqs));
  expect(seen).toEqual(await storedAfter(from));
  expect(await consumersOnServer()).toBe(0);
});

test("a store of another writer while this node stores nothing is handed on, by a consumer brought back", async () => {
  const { tail, seen } = await startTail();
  const from = tail.position;
  await waitFor(async () => tail.fedByAcks, QUIET_WAIT_MS * 2, "the tail to hand on from acknowledgements");
  const foreign = await storeOther("b", "from elsewhere");
  await waitFor(async () => tail.position >= foreign, 2_000, "the other writer's store to be handed on");
  expect(tail.fedByAcks).toBe(false);
  await storeOwn(tail, "b", "mine after it");
  await waitFor(async () => seen.length === 2, 2_000, "this node's store after it");
  expect(seen).toEqual(await storedAfter(from));
});

test("another writer's store between this node's: the hole brings the consumer back, and all come in stream order, once", async () => {
  const { tail, seen } = await startTail();
  const from = tail.position;
  await waitFor(async () => tail.fedByAcks, QUIET_WAIT_MS * 2, "the tail to hand on from acknowledgements");
  await storeOwn(tail, "c", "mine 1");
  await storeOther("c", "theirs");
  const last = await storeOwn(tail, "c", "mine 2");
  expect(tail.fedByAcks).toBe(false);
  await waitFor(async () => tail.position >= last, 2_000, "every store to be handed on");
  // Both writers at once, many stores each: still the stream's order, each once.
  const mine = Array.from({ length: 100 }, (_, i) => storeOwn(tail, `d${i % 7}`, `mine ${i}`));
  const theirs = Array.from({ length: 100 }, (_, i) => storeOther(`d${i % 7}`, `theirs ${i}`));
  const all = [...(await Promise.all(mine)), ...(await Promise.all(theirs))];
  await waitFor(async () => tail.position >= Math.max(...all), 5_000, "every store to be handed on");
  expect(seen).toEqual(await storedAfter(from));
  // Quiet again: back to acknowledgements, and still exact.
  await waitFor(async () => tail.fedByAcks, QUIET_WAIT_MS * 2, "the tail to hand on from acknowledgements again");
  await storeOwn(tail, "c", "mine 3");
  expect(seen).toEqual(await storedAfter(from));
});

test("a second member in the ring brings the consumer back; never fed by acknowledgements while not alone", async () => {
  const { tail, seen, alone } = await startTail(false);
  const from = tail.position;
  await storeOwn(tail, "e", "one");
  await Bun.sleep(QUIET_WAIT_MS);
  expect(tail.fedByAcks).toBe(false);
  alone.value = true;
  await waitFor(async () => tail.fedByAcks, QUIET_WAIT_MS * 2, "the tail to hand on from acknowledgements");
  alone.value = false;
  await waitFor(async () => !tail.fedByAcks, 1_000, "the consumer to come back");
  await waitFor(async () => (await consumersOnServer()) === 1, 2_000, "the consumer on the server");
  const last = await storeOwn(tail, "e", "two");
  await waitFor(async () => tail.position >= last, 2_000, "the store to be handed on");
  expect(seen).toEqual(await storedAfter(from));
});

test("a duplicate (the same msgID again) is not handed on again", async () => {
  const { tail, seen } = await startTail();
  const from = tail.position;
  await waitFor(async () => tail.fedByAcks, QUIET_WAIT_MS * 2, "the tail to hand on from acknowledgements");
  const first = await storeOwn(tail, "f", "once", "key-1");
  const again = await storeOwn(tail, "f", "once", "key-1");
  expect(again).toBe(first);
  expect(tail.fedByAcks).toBe(true);
  expect(seen).toEqual(await storedAfter(from));
  expect(seen.length).toBe(1);
});
