/**
 * JetStreamPublisher (src/bus/jetStreamPublisher.ts) against a real JetStream nats-server: publishes of
 * one turn keep their order in the stream, msgID dedupes within and across turns, headers are stored,
 * a subject no stream covers is refused (503), an acknowledgement that never comes times out (the link
 * to the server blackholed by a fault proxy), and `close()` rejects what still waits and what comes after.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { AckTimeout, JetStreamPublisher, JetStreamRejected, type StoreAck } from "../../src/bus/jetStreamPublisher.ts";
import { startNats, waitFor, type NatsFixture } from "../helpers/cluster.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultProxy.ts";

setDefaultTimeout(15_000);

const STREAM = "PUBTEST";
const SUBJECTS = "pubtest.>";
const DUPLICATE_WINDOW_MS = 60_000;
const ACK_TIMEOUT_MS = 5_000;
const SHORT_TIMEOUT_MS = 300;
/** The publisher's sweep period (SWEEP_MS in the module): a timeout is noticed up to one period late. */
const SWEEP_MS = 250;

let nats: NatsFixture;
let nc: NatsConnection;
let jsm: JetStreamManager;
let pub: JetStreamPublisher;
/** A second connection to the same server through a proxy that can blackhole it. */
let proxy: FaultProxy;
let ncProxied: NatsConnection;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: [SUBJECTS], duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000 });
  pub = new JetStreamPublisher(nc, ACK_TIMEOUT_MS);
  proxy = startFaultProxy({ target: { host: "127.0.0.1", port: nats.port } });
  ncProxied = await connect({ servers: `nats://127.0.0.1:${proxy.port}`, reconnect: false });
});

afterAll(async () => {
  pub?.close();
  proxy?.heal();
  await ncProxied?.close().catch(() => undefined);
  proxy?.stop();
  await nc?.close();
  await nats?.stop();
});

/** Messages stored per subject under `filter`. */
async function storedCounts(filter: string): Promise<Record<string, number>> {
  const info = await jsm.streams.info(STREAM, { subjects_filter: filter });
  return info.state.subjects ?? {};
}

async function storedTotal(filter: string): Promise<number> {
  return Object.values(await storedCounts(filter)).reduce((a, b) => a + b, 0);
}

test("500 publishes of one synchronous loop to several subjects are acked with increasing seqs and stored in that order", async () => {
  const N = 500;
  const subjects = ["pubtest.order.a", "pubtest.order.b", "pubtest.order.c", "pubtest.order.d.x"];
  const asked: { subject: string; data: string }[] = [];
  const acks: Promise<StoreAck>[] = [];
  for (let i = 0; i < N; i++) {
    // A pseudo-random subject per publish, so that consecutive publishes switch subjects unevenly.
    const subject = subjects[(i * 7 + (i >> 3)) % subjects.length]!;
    const data = JSON.stringify({ i, subject, pad: "x".repeat(i % 37) });
    asked.push({ subject, data });
    acks.push(pub.publish(subject, data));
  }
  // Nothing has left yet: the loop's publishes wait for the end of the turn, all of them tracked.
  expect(pub.inFlight).toBe(N);
  const results = await Promise.all(acks);
  expect(pub.inFlight).toBe(0);

  for (let i = 0; i < N; i++) {
    expect(results[i]!.duplicate).toBe(false);
    if (i > 0) expect(results[i]!.seq).toBe(results[i - 1]!.seq + 1);
  }
  const first = results[0]!.seq;
  const stored = await Promise.all(results.map((r) => jsm.streams.getMessage(STREAM, { seq: r.seq })));
  for (let i = 0; i < N; i++) {
    const m = stored[i];
    expect(m).not.toBeNull();
    expect(m!.seq).toBe(first + i);
    expect(m!.subject).toBe(asked[i]!.subject);
    expect(m!.string()).toBe(asked[i]!.data);
  }
  expect(await storedTotal("pubtest.order.>")).toBe(N);
});

test("a msgID published twice in one turn and again in a later turn is stored once; the repeats answer duplicate with its seq", async () => {
  const subject = "pubtest.dedupe.one";
  const msgID = `dup-${crypto.randomUUID()}`;
  const sameTurn = [pub.publish(subject, "first", { msgID }), pub.publish(subject, "second", { msgID })];
  // A different msgID in between, so the window holds more than one id.
  const other = pub.publish(subject, "other", { msgID: `${msgID}-other` });
  const [a, b] = await Promise.all(sameTurn);
  const c = await other;
  expect(a).toEqual({ seq: a!.seq, duplicate: false });
  expect(b).toEqual({ seq: a!.seq, duplicate: true });
  expect(c.duplicate).toBe(false);
  expect(c.seq).toBeGreaterThan(a!.seq);

  await Bun.sleep(10);
  const later = await pub.publish(subject, "third", { msgID });
  expect(later).toEqual({ seq: a!.seq, duplicate: true });

  expect(await storedCounts("pubtest.dedupe.>")).toEqual({ [subject]: 2 });
  const kept = await jsm.streams.getMessage(STREAM, { seq: a!.seq });
  expect(kept!.string()).toBe("first");
  expect(kept!.header.get("Nats-Msg-Id")).toBe(msgID);
});

test("headers passed in are stored on the message, with Nats-Msg-Id beside them when a msgID is given", async () => {
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const withId = headers();
  withId.set("traceparent", traceparent);
  withId.set("tracestate", "touchline=1");
  const withoutId = headers();
  withoutId.set("traceparent", traceparent.replace("-01", "-00"));
  const msgID = `hdr-${crypto.randomUUID()}`;
  const [a, b] = await Promise.all([
    pub.publish("pubtest.headers.a", "with id", { msgID, headers: withId }),
    pub.publish("pubtest.headers.b", "without id", { headers: withoutId }),
  ]);
  expect(b.seq).toBe(a.seq + 1);

  const ma = await jsm.streams.getMessage(STREAM, { seq: a.seq });
  expect(ma!.subject).toBe("pubtest.headers.a");
  expect(ma!.string()).toBe("with id");
  expect(ma!.header.get("traceparent")).toBe(traceparent);
  expect(ma!.header.get("tracestate")).toBe("touchline=1");
  expect(ma!.header.get("Nats-Msg-Id")).toBe(msgID);

  const mb = await jsm.streams.getMessage(STREAM, { seq: b.seq });
  expect(mb!.subject).toBe("pubtest.headers.b");
  expect(mb!.string()).toBe("without id");
  expect(mb!.header.get("traceparent")).toBe(traceparent.replace("-01", "-00"));
  expect(mb!.header.has("Nats-Msg-Id")).toBe(false);

  // The dedupe really keyed on the stored id: publishing it again is a duplicate of `a`.
  expect(await pub.publish("pubtest.headers.a", "again", { msgID })).toEqual({ seq: a.seq, duplicate: true });
});

test("a subject no stream covers is refused with JetStreamRejected 503, and publishes around it still store", async () => {
  const before = pub.publish("pubtest.refused.ok", "before");
  const refused = pub.publish("nostream.here", "nobody stores this");
  const after = pub.publish("pubtest.refused.ok", "after");
  const err = await refused.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JetStreamRejected);
  expect((err as JetStreamRejected).code).toBe(503);
  const [x, y] = await Promise.all([before, after]);
  expect(y.seq).toBe(x.seq + 1);
  expect(pub.inFlight).toBe(0);
});

test("an acknowledgement that never comes rejects with AckTimeout after about the timeout; a late ack is ignored", async () => {
  const slow = new JetStreamPublisher(ncProxied, SHORT_TIMEOUT_MS);
  try {
    await ncProxied.flush(); // the inbox subscription has reached the server
    // Control: through the proxy, acks do come.
    const ok = await slow.publish("pubtest.timeout.ok", "through the proxy");
    expect(ok.duplicate).toBe(false);

    proxy.blackhole();
    const t0 = Date.now();
    const lost = [slow.publish("pubtest.timeout.lost", "lost 1"), slow.publish("pubtest.timeout.lost", "lost 2")];
    expect(slow.inFlight).toBe(2);
    const settled = await Promise.allSettled(lost);
    const elapsed = Date.now() - t0;
    for (const s of settled) {
      expect(s.status).toBe("rejected");
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(AckTimeout);
    }
    expect(elapsed).toBeGreaterThanOrEqual(SHORT_TIMEOUT_MS - 5);
    expect(elapsed).toBeLessThan(SHORT_TIMEOUT_MS + SWEEP_MS + 1_000);
    expect(slow.inFlight).toBe(0);
    // Nothing reached the server while the link was down.
    expect(await storedTotal("pubtest.timeout.lost")).toBe(0);

    // Healed: the held publishes reach JetStream and are stored; their acks come back to nobody.
    proxy.heal();
    await waitFor(async () => (await storedTotal("pubtest.timeout.lost")) === 2, 5_000, "the held publishes to be stored");
    await ncProxied.flush();
    expect(slow.inFlight).toBe(0);
    // The publisher still works afterwards.
    const again = await slow.publish("pubtest.timeout.ok", "after the heal");
    expect(again.seq).toBeGreaterThan(ok.seq);
  } finally {
    proxy.heal();
    slow.close();
  }
});

test("close() rejects every publish still waiting (queued or sent) and every later one", async () => {
  const closing = new JetStreamPublisher(ncProxied, ACK_TIMEOUT_MS);
  try {
    await ncProxied.flush();
    // Sent, but the acks are held back by the blackholed link.
    proxy.blackhole();
    const sent = [closing.publish("pubtest.close.sent", "s1"), closing.publish("pubtest.close.sent", "s2")];
    await new Promise((r) => setImmediate(r));
    await Bun.sleep(20);
    // Queued within this turn, not yet written.
    const queued = [closing.publish("pubtest.close.queued", "q1"), closing.publish("pubtest.close.queued", "q2")];
    expect(closing.inFlight).toBe(4);
    closing.close();
    expect(closing.inFlight).toBe(0);

    const settled = await Promise.allSettled([...sent, ...queued]);
    for (const s of settled) {
      expect(s.status).toBe("rejected");
      expect(String((s as PromiseRejectedResult).reason)).toContain("closed before JetStream acknowledged");
    }
    await expect(closing.publish("pubtest.close.later", "later")).rejects.toThrow("the publisher is closed");
    expect(closing.inFlight).toBe(0);

    proxy.heal();
    await waitFor(async () => (await storedTotal("pubtest.close.sent")) === 2, 5_000, "the sent publishes to be stored");
    await ncProxied.flush();
    await Bun.sleep(20); // a turn for a queued flush, had close() left one behind
    // The queued ones never left; the later one was never sent.
    expect(await storedCounts("pubtest.close.>")).toEqual({ "pubtest.close.sent": 2 });
  } finally {
    proxy.heal();
    closing.close();
  }
});
