/**
 * LeaseTable (src/cluster/leases.ts) against a real JetStream nats-server, fed by a real bucket watch
 * (src/bus/bucketWatch.ts) built as TouchlineNode.attach() builds it. Leases are per shard: the matches
 * of a shard share one KV key ("shard-<n>") and one epoch, the first acquire writes it and the others
 * join without a write, the last release deletes it; a live holder fences others off, a dead one is
 * taken over at a higher epoch that the old holder's watch reports, and a delete seen late (or an old
 * holder's release) never erases a newer lease. "Without a write" is checked on the bucket stream's last
 * sequence, "without a round trip" on the messages sent by the table's KV connection; a late delete is
 * made late for real by holding the watch's bytes back in a fault proxy.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { bucketWatch } from "../../src/bus/bucketWatch.ts";
import { READER_API_TIMEOUT_MS, type ReaderContext } from "../../src/bus/orderedReader.ts";
import { type Lease, LeaseTable } from "../../src/cluster/leases.ts";
import { shardKey, shardOf } from "../../src/cluster/shards.ts";
import { startNats, waitFor, type NatsFixture } from "../helpers/cluster.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultProxy.ts";

setDefaultTimeout(15_000);

/** Long enough for a watch on a local server to deliver a few entries many times over. */
const WATCH_SETTLE_MS = 300;
const WATCH_TIMEOUT_MS = 5_000;

let nats: NatsFixture;
const connections: NatsConnection[] = [];
const tables: LeaseTable[] = [];
const proxies: FaultProxy[] = [];
const problems: { what: string; fields: Record<string, unknown> }[] = [];
let nc: NatsConnection;
let jsm: JetStreamManager;
let bucketCounter = 0;

beforeAll(async () => {
  nats = await startNats();
  nc = await connection();
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  for (const t of tables) t.stop();
  for (const p of proxies) p.heal();
  for (const c of connections) await c.close().catch(() => undefined);
  for (const p of proxies) p.stop();
  await nats?.stop();
});

async function connection(servers = nats.url): Promise<NatsConnection> {
  const c = await connect({ servers, noAsyncTraces: true });
  connections.push(c);
  return c;
}

/** A fresh bucket per test, so its stream's sequence counts this test's writes only. */
async function newBucket(): Promise<{ name: string; kv: KV }> {
  const name = `leases_${++bucketCounter}`;
  return { name, kv: await new Kvm(nc).create(name, { history: 1 }) };
}

interface Table {
  table: LeaseTable;
  /** Messages the table's KV connection has sent: its lease reads and writes (the watch has a connection of its own). */
  sent(): number;
}

/**
 * A started LeaseTable for `nodeId` on `bucket`, its watch built as TouchlineNode.attach() builds it.
 * The KV and the watch get a connection each, so the KV's messages can be counted; `watchServer` puts
 * the watch's connection elsewhere (through a fault proxy).
 */
async function startTable(bucket: string, nodeId: string, watchServer = nats.url): Promise<Table> {
  const kvConn = await connection();
  const watchConn = await connection(watchServer);
  const readers: ReaderContext = {
    nc: watchConn,
    jsm: await jetstreamManager(watchConn, { timeout: READER_API_TIMEOUT_MS, checkAPI: false }),
    onProblem: (what, fields) => problems.push({ what, fields }),
  };
  const kv = await new Kvm(kvConn).open(bucket);
  const table = new LeaseTable(kv, bucketWatch(readers, bucket), nodeId);
  tables.push(table);
  await table.start();
  return { table, sent: () => kvConn.stats().outMsgs };
}

/** The bucket stream's last sequence: every write (put or delete) to the bucket moves it by one. */
async function lastSeq(bucket: string): Promise<number> {
  return (await jsm.streams.info(`KV_${bucket}`)).state.last_seq;
}

async function keysOf(kv: KV): Promise<string[]> {
  const out: string[] = [];
  for await (const k of await kv.keys()) out.push(k);
  return out.sort();
}

/** `count` match ids of one shard, and one of another shard. */
function matchesOfOneShard(prefix: string, count: number): { shard: number; same: string[]; other: string } {
  const byShard = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    const m = `${prefix}${i}`;
    const s = shardOf(m);
    const list = byShard.get(s) ?? [];
    list.push(m);
    byShard.set(s, list);
    if (list.length === count) {
      const other = [...byShard.entries()].find(([t]) => t !== s)?.[1][0];
      if (other === undefined) continue;
      return { shard: s, same: list, other };
    }
  }
}

const nobodyLive = () => false;

async function settle(): Promise<void> {
  await Bun.sleep(WATCH_SETTLE_MS);
}

test("matches of one shard share one key and one epoch; the second joins without a NATS round trip", async () => {
  const { name, kv } = await newBucket();
  const { table: t, sent } = await startTable(name, "a");
  const {
    shard,
    same: [m1, m2],
    other,
  } = matchesOfOneShard("m", 2);
  expect(shardOf(m1!)).toBe(shardOf(m2!));
  expect(shardOf(other)).not.toBe(shard);

  const before = await lastSeq(name);
  const e1 = await t.acquire(m1!, nobodyLive);
  expect(e1).toBeNumber();
  expect(await lastSeq(name)).toBe(before + 1);
  expect(e1).toBe(await lastSeq(name));

  const sentBefore = sent();
  const e2 = await t.acquire(m2!, nobodyLive);
  expect(e2).toBe(e1!);
  expect(sent()).toBe(sentBefore);
  expect(await lastSeq(name)).toBe(before + 1);

  expect(await keysOf(kv)).toEqual([shardKey(shard)]);
  const entry = await kv.get(shardKey(shard));
  expect(entry?.operation).toBe("PUT");
  expect(entry?.revision).toBe(e1!);
  expect(entry?.json<{ node: string }>().node).toBe("a");
  for (const m of [m1!, m2!]) expect(await kv.get(m)).toBeNull();

  expect(t.holder(m1!)).toEqual({ node: "a", epoch: e1! });
  expect(t.holder(m2!)).toEqual({ node: "a", epoch: e1! });
  expect(t.holder(other)).toBeUndefined();

  // Once the watch has delivered our own write too, nothing changes and matches still join for free.
  await settle();
  expect(t.holder(m1!)).toEqual({ node: "a", epoch: e1! });
  expect(t.holder(m2!)).toEqual({ node: "a", epoch: e1! });
  const sentSettled = sent();
  expect(await t.acquire(m1!, nobodyLive)).toBe(e1!);
  expect(sent()).toBe(sentSettled);
  // A match of another shard takes a lease of its own: a second key, at a new epoch.
  const e3 = await t.acquire(other, nobodyLive);
  expect(e3).toBeGreaterThan(e1!);
  expect(await keysOf(kv)).toEqual([shardKey(shard), shardKey(shardOf(other))].sort());
});

test("the last release of a shard deletes its key, earlier ones keep it; taking it again gives a higher epoch", async () => {
  const { name, kv } = await newBucket();
  const { table: t, sent } = await startTable(name, "a");
  const {
    shard,
    same: [m1, m2],
  } = matchesOfOneShard("r", 2);

  const epoch = (await t.acquire(m1!, nobodyLive))!;
  expect(await t.acquire(m2!, nobodyLive)).toBe(epoch);
  await settle();

  const beforeRelease = await lastSeq(name);
  const sentBefore = sent();
  await t.release(m1!, epoch);
  expect(sent()).toBe(sentBefore);
  expect(await lastSeq(name)).toBe(beforeRelease);
  expect((await kv.get(shardKey(shard)))?.operation).toBe("PUT");
  expect(await keysOf(kv)).toEqual([shardKey(shard)]);
  await settle();
  expect(t.holder(m2!)).toEqual({ node: "a", epoch });
  expect(t.holder(m1!)).toEqual({ node: "a", epoch });

  await t.release(m2!, epoch);
  expect(await lastSeq(name)).toBe(beforeRelease + 1);
  const gone = await kv.get(shardKey(shard));
  expect(gone?.operation).toBe("DEL");
  expect(gone?.revision).toBe(beforeRelease + 1);
  expect(await keysOf(kv)).toEqual([]);
  await waitFor(async () => t.holder(m1!) === undefined && t.holder(m2!) === undefined, WATCH_TIMEOUT_MS, "the watch to show the release");
  await settle();
  expect(t.holder(m1!)).toBeUndefined();
  expect(t.holder(m2!)).toBeUndefined();

  // Released: the next acquire writes again, at an epoch above the delete's.
  const again = await t.acquire(m2!, nobodyLive);
  expect(again).toBeGreaterThan(beforeRelease + 1);
  expect(again).toBe(await lastSeq(name));
  expect(await t.acquire(m1!, nobodyLive)).toBe(again!);
  expect(await lastSeq(name)).toBe(again!);
  expect((await kv.get(shardKey(shard)))?.json<{ node: string }>().node).toBe("a");
  expect(t.holder(m1!)).toEqual({ node: "a", epoch: again! });

  // Releasing at the old epoch is a no-op: the key stays.
  await t.release(m1!, epoch);
  await t.release(m2!, epoch);
  expect(await lastSeq(name)).toBe(again!);
  expect((await kv.get(shardKey(shard)))?.operation).toBe("PUT");
});

test("a live holder fences another node off; a dead one is taken over at a higher epoch and learns it through its watch", async () => {
  const { name, kv } = await newBucket();
  const { table: a, sent: aSent } = await startTable(name, "a");
  const { table: b } = await startTable(name, "b");
  const {
    shard,
    same: [m1, m2],
  } = matchesOfOneShard("t", 2);
  const aChanges: [number, Lease | undefined][] = [];
  a.onChange((s, lease) => aChanges.push([s, lease]));
  let aLive = true;
  const asked = new Set<string>();
  const bSeesLive = (node: string) => {
    asked.add(node);
    return aLive;
  };

  const aEpoch = (await a.acquire(m1!, nobodyLive))!;
  expect(aEpoch).toBeNumber();
  await waitFor(async () => b.holder(m1!)?.epoch === aEpoch, WATCH_TIMEOUT_MS, "b's watch to show a's lease");
  expect(b.holder(m2!)).toEqual({ node: "a", epoch: aEpoch });

  // a is live: b does not get the shard, for either match, and writes nothing.
  const beforeRefused = await lastSeq(name);
  expect(await b.acquire(m1!, bSeesLive)).toBeUndefined();
  expect(await b.acquire(m2!, bSeesLive)).toBeUndefined();
  expect(await lastSeq(name)).toBe(beforeRefused);
  expect([...asked]).toEqual(["a"]);
  expect((await kv.get(shardKey(shard)))?.json<{ node: string }>().node).toBe("a");
  expect(a.holder(m1!)).toEqual({ node: "a", epoch: aEpoch });

  // a is no longer live: b takes the shard over at a higher epoch.
  aLive = false;
  const bEpoch = (await b.acquire(m2!, bSeesLive))!;
  expect(bEpoch).toBeGreaterThan(aEpoch);
  expect(await b.acquire(m1!, bSeesLive)).toBe(bEpoch);
  expect(await lastSeq(name)).toBe(bEpoch);
  const entry = await kv.get(shardKey(shard));
  expect(entry?.revision).toBe(bEpoch);
  expect(entry?.json<{ node: string }>().node).toBe("b");
  expect(b.holder(m1!)).toEqual({ node: "b", epoch: bEpoch });

  await waitFor(async () => a.holder(m1!)?.node === "b", WATCH_TIMEOUT_MS, "a's watch to show b's takeover");
  expect(a.holder(m1!)).toEqual({ node: "b", epoch: bEpoch });
  expect(a.holder(m2!)).toEqual({ node: "b", epoch: bEpoch });
  expect(aChanges).toContainEqual([shard, { node: "b", epoch: bEpoch }]);
  expect(aChanges.at(-1)).toEqual([shard, { node: "b", epoch: bEpoch }]);

  // a, fenced off by its watch: its release at the old epoch is not even sent, and b's lease stays.
  const sentBefore = aSent();
  const beforeOldRelease = await lastSeq(name);
  await a.release(m1!, aEpoch);
  expect(aSent()).toBe(sentBefore);
  await settle();
  expect(await lastSeq(name)).toBe(beforeOldRelease);
  const still = await kv.get(shardKey(shard));
  expect(still?.operation).toBe("PUT");
  expect(still?.revision).toBe(bEpoch);
  expect(still?.json<{ node: string }>().node).toBe("b");
  expect(b.holder(m1!)).toEqual({ node: "b", epoch: bEpoch });
  expect(a.holder(m1!)).toEqual({ node: "b", epoch: bEpoch });
  // Nor does it join its old lease: it asks the bucket, and b is live.
  expect(await a.acquire(m2!, () => true)).toBeUndefined();
  expect(await lastSeq(name)).toBe(bEpoch);
});

test("an old holder that has not seen the takeover yet cannot delete the new lease: the delete is compared at its epoch", async () => {
  const { name, kv } = await newBucket();
  // A table whose watch never runs only knows its own writes: it still believes it holds the shard
  // when it releases, so only the server's compare-and-delete protects b's lease.
  const own = await connection();
  const blind = new LeaseTable(
    await new Kvm(own).open(name),
    bucketWatch({ nc: own, jsm: await jetstreamManager(own, { checkAPI: false }), onProblem: () => {} }, name),
    "a",
  );
  const { table: b } = await startTable(name, "b");
  const {
    shard,
    same: [m1],
  } = matchesOfOneShard("f", 1);

  const aEpoch = (await blind.acquire(m1!, nobodyLive))!;
  const bEpoch = (await b.acquire(m1!, nobodyLive))!;
  expect(bEpoch).toBeGreaterThan(aEpoch);
  expect(blind.holder(m1!)).toEqual({ node: "a", epoch: aEpoch });

  await blind.release(m1!, aEpoch);
  expect(await lastSeq(name)).toBe(bEpoch);
  const entry = await kv.get(shardKey(shard));
  expect(entry?.operation).toBe("PUT");
  expect(entry?.json<{ node: string }>().node).toBe("b");
  await settle();
  expect(b.holder(m1!)).toEqual({ node: "b", epoch: bEpoch });
});

test("20 concurrent acquires of one shard share one write and one epoch", async () => {
  const { name, kv } = await newBucket();
  const { table: t } = await startTable(name, "a");
  const { shard, same } = matchesOfOneShard("c", 20);
  expect(new Set(same.map(shardOf))).toEqual(new Set([shard]));

  const before = await lastSeq(name);
  const epochs = await Promise.all(same.map((m) => t.acquire(m, nobodyLive)));
  expect(epochs[0]).toBeNumber();
  expect(new Set(epochs)).toEqual(new Set([epochs[0]]));
  expect(await lastSeq(name)).toBe(before + 1);
  expect(epochs[0]).toBe(before + 1);
  expect(await keysOf(kv)).toEqual([shardKey(shard)]);
  for (const m of same) expect(t.holder(m)).toEqual({ node: "a", epoch: epochs[0]! });

  // Every match holds a share: the key goes only with the last release, in one delete.
  const [last, ...rest] = same;
  await Promise.all(rest.map((m) => t.release(m, epochs[0]!)));
  expect(await lastSeq(name)).toBe(before + 1);
  expect((await kv.get(shardKey(shard)))?.operation).toBe("PUT");
  await t.release(last!, epochs[0]!);
  expect(await lastSeq(name)).toBe(before + 2);
  expect((await kv.get(shardKey(shard)))?.operation).toBe("DEL");

  // Taken again by 20 at once after the release: again one write (a create over the delete), one epoch.
  const again = await Promise.all(same.map((m) => t.acquire(m, nobodyLive)));
  expect(new Set(again)).toEqual(new Set([before + 3]));
  expect(await lastSeq(name)).toBe(before + 3);
});

test("a delete seen late does not erase the newer lease taken right after it", async () => {
  const { name, kv } = await newBucket();
  const { table: t, sent } = await startTable(name, "a");
  const {
    shard,
    same: [m1, m2],
  } = matchesOfOneShard("d", 2);
  const changes: [number, Lease | undefined][] = [];
  t.onChange((s, lease) => changes.push([s, lease]));

  // No pause anywhere: the watch may still be behind the put, the delete and the new put when they are written.
  const first = (await t.acquire(m1!, nobodyLive))!;
  await t.release(m1!, first);
  const second = (await t.acquire(m1!, nobodyLive))!;
  expect(second).toBeGreaterThan(first + 1);
  expect(t.holder(m1!)).toEqual({ node: "a", epoch: second });

  await settle();
  expect(t.holder(m1!)).toEqual({ node: "a", epoch: second });
  expect(changes.at(-1)).toEqual([shard, { node: "a", epoch: second }]);
  // Still held by this process: another match of the shard joins without a write.
  const before = sent();
  expect(await t.acquire(m2!, nobodyLive)).toBe(second);
  expect(sent()).toBe(before);
  const entry = await kv.get(shardKey(shard));
  expect(entry?.operation).toBe("PUT");
  expect(entry?.revision).toBe(second);

  // A second table started now replays the bucket and sees the same lease.
  const { table: late } = await startTable(name, "b");
  await waitFor(async () => late.holder(m1!) !== undefined, WATCH_TIMEOUT_MS, "the new table's replay");
  expect(late.holder(m1!)).toEqual({ node: "a", epoch: second });
});

test("taking a shard again while its release is still being written waits for it and gets a new lease", async () => {
  const { name, kv } = await newBucket();
  const { table: t } = await startTable(name, "a");
  const {
    shard,
    same: [m1, m2],
  } = matchesOfOneShard("w", 2);

  const first = (await t.acquire(m1!, nobodyLive))!;
  const [, second, joined] = await Promise.all([t.release(m1!, first), t.acquire(m1!, nobodyLive), t.acquire(m2!, nobodyLive)]);
  expect(second).toBe(first + 2);
  expect(joined).toBe(second!);
  const entry = await kv.get(shardKey(shard));
  expect(entry?.operation).toBe("PUT");
  expect(entry?.revision).toBe(second!);
  await settle();
  expect(t.holder(m1!)).toEqual({ node: "a", epoch: second! });
});

test("a delete held back on the watch's link and delivered after the lease was taken again changes nothing", async () => {
  const { name, kv } = await newBucket();
  // The watch talks to the server through a proxy that can hold its bytes back; the KV talks directly.
  const proxy = startFaultProxy({ target: { host: "127.0.0.1", port: nats.port } });
  proxies.push(proxy);
  const { table: t, sent } = await startTable(name, "a", `nats://127.0.0.1:${proxy.port}`);
  const {
    shard,
    same: [m1, m2],
    other,
  } = matchesOfOneShard("h", 2);
  // The watch is delivering (its pull is out) before its link goes quiet: another node's lease of another shard shows.
  await kv.put(shardKey(shardOf(other)), JSON.stringify({ node: "z" }));
  await waitFor(async () => t.holder(other)?.node === "z", WATCH_TIMEOUT_MS, "the watch to deliver");
  const changes: [number, Lease | undefined][] = [];
  t.onChange((s, lease) => changes.push([s, lease]));

  // The watch hears nothing while the lease is taken, given back and taken again.
  proxy.blackhole();
  const first = (await t.acquire(m1!, nobodyLive))!;
  await t.release(m1!, first);
  const second = (await t.acquire(m1!, nobodyLive))!;
  expect(second).toBe(first + 2);
  expect((await kv.get(shardKey(shard)))?.revision).toBe(second);
  expect(t.holder(m1!)).toEqual({ node: "a", epoch: second });
  expect(changes).toEqual([
    [shard, { node: "a", epoch: first }],
    [shard, { node: "a", epoch: second }],
  ]);

  // The first put, the delete (first + 1) and the new put (second) now arrive together, in that order.
  proxy.heal();
  await settle();
  expect(t.holder(m1!)).toEqual({ node: "a", epoch: second });
  // Neither the stale put, the stale delete nor our own put seen again told anyone the lease changed.
  expect(changes).toHaveLength(2);
  // The process still holds the lease: another match of the shard joins it without a round trip.
  const before = sent();
  expect(await t.acquire(m2!, nobodyLive)).toBe(second);
  expect(sent()).toBe(before);
});

test("no reader trouble was reported", () => {
  expect(problems).toEqual([]);
});
