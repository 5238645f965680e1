/**
 * DirectGets (src/bus/directGets.ts) against a real JetStream nats-server: the seq of a subject's first
 * message after a seq, "none" past the last, hundreds asked in one turn each answered for its own
 * subject, a stream without direct gets or no stream at all failing, and `close()` rejecting what waits.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DirectGetFailed, DirectGets } from "../../src/bus/directGets.ts";
import { startNats, type NatsFixture } from "../helpers/cluster.ts";

setDefaultTimeout(15_000);

const STREAM = "DIRECTTEST";
const TIMEOUT_MS = 5_000;
const SHORT_TIMEOUT_MS = 300;
const MANY = 300;

let nats: NatsFixture;
let nc: NatsConnection;
let jsm: JetStreamManager;
let gets: DirectGets;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["direct.>"], allow_direct: true });
  await jsm.streams.add({ name: "NODIRECT", subjects: ["nodirect.>"], allow_direct: false });
  gets = new DirectGets(nc, TIMEOUT_MS);
});

afterAll(async () => {
  gets?.close();
  await nc?.close();
  await nats?.stop();
});

/** Stores one message on `subject` and answers its seq. */
async function store(subject: string): Promise<number> {
  const js = (await import("@nats-io/jetstream")).jetstream(nc);
  return (await js.publish(subject, "x")).seq;
}

test("the first message of a subject after a seq, skipping other subjects; none past its last", async () => {
  const a1 = await store("direct.a");
  const b1 = await store("direct.b");
  const a2 = await store("direct.a");
  expect(await gets.firstSeqAfter(STREAM, "direct.a", 0)).toBe(a1);
  expect(await gets.firstSeqAfter(STREAM, "direct.a", a1)).toBe(a2);
  expect(await gets.firstSeqAfter(STREAM, "direct.b", a1)).toBe(b1);
  expect(await gets.firstSeqAfter(STREAM, "direct.a", a2)).toBeUndefined();
  expect(await gets.firstSeqAfter(STREAM, "direct.never", 0)).toBeUndefined();
});

test(`${MANY} asked in one turn are each answered for their own subject`, async () => {
  const seqs: number[] = [];
  for (let i = 0; i < MANY; i++) seqs.push(await store(`direct.many.${i}`));
  const answers = await Promise.all(seqs.map((_, i) => gets.firstSeqAfter(STREAM, `direct.many.${i}`, 0)));
  expect(answers).toEqual(seqs);
});

test("a stream that does not allow direct gets, or no stream, fails with DirectGetFailed (the server does not answer: timed out)", async () => {
  await store("direct.kept");
  const impatient = new DirectGets(nc, SHORT_TIMEOUT_MS);
  await expect(impatient.firstSeqAfter("NODIRECT", "nodirect.a", 0)).rejects.toBeInstanceOf(DirectGetFailed);
  await expect(impatient.firstSeqAfter("MISSING", "missing.a", 0)).rejects.toBeInstanceOf(DirectGetFailed);
  impatient.close();
  // Requests around a refused one are answered.
  expect(await gets.firstSeqAfter(STREAM, "direct.kept", 0)).toBeGreaterThan(0);
});

test("close() rejects requests still waiting and every later one", async () => {
  const own = new DirectGets(nc, TIMEOUT_MS);
  const waiting = own.firstSeqAfter(STREAM, "direct.a", 0);
  own.close();
  await expect(waiting).rejects.toThrow("closed before JetStream answered");
  await expect(own.firstSeqAfter(STREAM, "direct.a", 0)).rejects.toThrow("direct gets are closed");
});
