/**
 * EventLog.read (src/bus/eventLog.ts) against a real JetStream nats-server, through a TCP proxy that
 * black-holes the link mid-read: the read must fail within its deadline, not wait for the link.
 *
 * A follower's mailbox awaits such a read while it fills a gap; a read that does not end leaves the
 * match's streams on heartbeats. The page consumer is nats.js's ordered one: on missed heartbeats it
 * recreates itself rather than ending the fetch, and retries a re-creation that times out, so without
 * a deadline the read ends only once the link heals (or after about 30 failed re-creations).
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DirectGets } from "../../src/bus/directGets.ts";
import { EventLog, LogReadTimeout, PAGE_READ_DEADLINE_MS } from "../../src/bus/eventLog.ts";
import { JetStreamPublisher } from "../../src/bus/jetStreamPublisher.ts";
import { names as namesOf } from "../../src/bus/subjects.ts";
import { startNats, type NatsFixture } from "../helpers/cluster.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultProxy.ts";

setDefaultTimeout(60_000);

const TIMEOUT_MS = 5_000;
const RETENTION_MS = 60 * 60_000;
const MATCH = "m1";
const EVENTS = 3;
/** An empty range's page waits for its fetch to expire (1 s): the link fails inside that wait. */
const BLACKHOLE_AFTER_MS = 300;
const SLACK_MS = 3_000;
/** Long enough that a read ending only with the heal is told from one ending at its deadline. */
const BLACKHOLE_MS = PAGE_READ_DEADLINE_MS + 2 * SLACK_MS;

let nats: NatsFixture;
let proxy: FaultProxy;
let nc: NatsConnection;
let jsm: JetStreamManager;
let log: EventLog;
let publisher: JetStreamPublisher;
let gets: DirectGets;
let lastSeq = 0;
const names = namesOf("pageread");

beforeAll(async () => {
  nats = await startNats();
  proxy = startFaultProxy({ target: { host: "127.0.0.1", port: nats.port } });
  nc = await connect({ servers: `nats://127.0.0.1:${proxy.port}`, maxReconnectAttempts: -1 });
  jsm = await jetstreamManager(nc);
  publisher = new JetStreamPublisher(nc, TIMEOUT_MS);
  gets = new DirectGets(nc, TIMEOUT_MS);
  log = new EventLog(jetstream(nc), publisher, gets, jsm, names, () => {});
  await log.ensure(RETENTION_MS);
  for (let i = 0; i < EVENTS; i++) lastSeq = (await log.append(MATCH, { type: "tick", data: { i } })).seq;
});

afterAll(async () => {
  proxy?.heal();
  publisher?.close();
  gets?.close();
  await nc?.close();
  proxy?.stop();
  await nats?.stop();
});

test("a page is read through a consumer of its own, which is gone afterwards", async () => {
  const page = await log.read(MATCH, 0, lastSeq, 1_000_000);
  expect(page.events.map((e) => e.seq)).toEqual([1, 2, 3]);
  expect(page.through).toBe(lastSeq);
  expect((await jsm.consumers.list(names.stream).next()).length).toBe(0);
});

test("a page read whose server stops answering mid-fetch fails at its deadline, not when the link heals", async () => {
  const started = performance.now();
  const settled = log.read(MATCH, lastSeq, lastSeq + 10, 1_000_000).then(
    () => ({ ms: performance.now() - started, err: undefined }),
    (err: unknown) => ({ ms: performance.now() - started, err }),
  );
  await Bun.sleep(BLACKHOLE_AFTER_MS);
  proxy.blackhole();
  const healed = Bun.sleep(BLACKHOLE_MS).then(() => proxy.heal());
  const outcome = await settled;
  expect(outcome.err).toBeInstanceOf(LogReadTimeout);
  expect(outcome.ms).toBeLessThan(PAGE_READ_DEADLINE_MS + SLACK_MS);
  await healed;
  // Healed, the log reads again: nothing of the abandoned read is in the way.
  const page = await log.read(MATCH, 0, lastSeq, 1_000_000);
  expect(page.events.map((e) => e.seq)).toEqual([1, 2, 3]);
});
