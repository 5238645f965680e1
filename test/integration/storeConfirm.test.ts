/**
 * EventLog's message-get gate (src/bus/eventLog.ts, `confirmStore`) against a real nats-server.
 *
 * nats-server 2.9.10 registers a stream being created before it sets up the stream's store, and a
 * STREAM.MSG.GET arriving in between makes it panic and exit. The store-loss scenario met it: one node
 * recreating the stream while another node's actors asked for their matches' last seqs. `lastSeqOf`
 * is the log's one message get; it is sent only once the stream has answered a direct get (which a
 * stream answers only once its store is set up), and not again after a NATS disconnect until then.
 * A spy subscription on the server's API subject counts the message gets that reach it.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { DirectGets } from "../../src/bus/directGets.ts";
import { EventLog, StoreNotConfirmed } from "../../src/bus/eventLog.ts";
import { JetStreamPublisher } from "../../src/bus/jetStreamPublisher.ts";
import { names as namesOf } from "../../src/bus/subjects.ts";
import { startNats, type NatsFixture } from "../helpers/cluster.ts";

setDefaultTimeout(30_000);

const TIMEOUT_MS = 2_000;
const RETENTION_MS = 60 * 60_000;
const MATCH = "m1";
const names = namesOf("storeconfirm");

let nats: NatsFixture;
let nc: NatsConnection;
let spy: NatsConnection;
let spied: Subscription;
let messageGets = 0;
let publisher: JetStreamPublisher;
let gets: DirectGets;
let log: EventLog;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: `nats://127.0.0.1:${nats.port}` });
  spy = await connect({ servers: `nats://127.0.0.1:${nats.port}` });
  spied = spy.subscribe(`$JS.API.STREAM.MSG.GET.${names.stream}`, {
    callback: () => {
      messageGets++;
    },
  });
  await spy.flush();
  publisher = new JetStreamPublisher(nc, TIMEOUT_MS);
  gets = new DirectGets(nc, TIMEOUT_MS);
  log = new EventLog(jetstream(nc), publisher, gets, await jetstreamManager(nc), names, () => {});
});

afterAll(async () => {
  spied?.unsubscribe();
  publisher?.close();
  gets?.close();
  await nc?.close();
  await spy?.close();
  await nats?.stop();
});

/** Lets every message get sent so far reach the spy. */
async function settle(): Promise<void> {
  await nc.flush();
  await spy.flush();
}

test("before the stream has answered a direct get, lastSeqOf refuses and sends nothing", async () => {
  await expect(log.lastSeqOf(MATCH)).rejects.toBeInstanceOf(StoreNotConfirmed);
  // No stream yet: nothing answers the direct get, so nothing is confirmed.
  await expect(log.confirmStore()).rejects.toThrow();
  await expect(log.lastSeqOf(MATCH)).rejects.toBeInstanceOf(StoreNotConfirmed);
  await settle();
  expect(messageGets).toBe(0);
});

test("once the stream answers, lastSeqOf asks JetStream and answers", async () => {
  await log.ensure(RETENTION_MS);
  await log.confirmStore();
  expect(await log.lastSeqOf(MATCH)).toBe(0);
  const { seq } = await log.append(MATCH, { type: "goal", data: { by: "home" } });
  expect(await log.lastSeqOf(MATCH)).toBe(seq);
  await settle();
  expect(messageGets).toBe(2);
});

test("suspended (NATS went away), it refuses again until the stream answers again", async () => {
  log.suspendMessageGets();
  await expect(log.lastSeqOf(MATCH)).rejects.toBeInstanceOf(StoreNotConfirmed);
  await settle();
  expect(messageGets).toBe(2);
  await log.confirmStore();
  expect(await log.lastSeqOf(MATCH)).toBeGreaterThan(0);
});

test("an answer that comes back across a suspension confirms nothing", async () => {
  const asked = log.confirmStore();
  log.suspendMessageGets();
  await expect(asked).rejects.toBeInstanceOf(StoreNotConfirmed);
  await expect(log.lastSeqOf(MATCH)).rejects.toBeInstanceOf(StoreNotConfirmed);
});

test("a stream made without direct gets (by an older node) is given them by ensure, and then confirms", async () => {
  const older = namesOf("storeconfirm-older");
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: older.stream, subjects: [older.eventWildcard], allow_direct: false });
  const olderLog = new EventLog(jetstream(nc), publisher, gets, jsm, older, () => {});
  await expect(olderLog.confirmStore()).rejects.toThrow();
  await olderLog.ensure(RETENTION_MS);
  expect((await jsm.streams.info(older.stream)).config.allow_direct).toBe(true);
  await olderLog.confirmStore();
  expect(await olderLog.lastSeqOf(MATCH)).toBe(0);
});
