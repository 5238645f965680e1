/**
 * The cluster, end to end: a real nats-server and real node processes. Clients reconnect to any node with
 * their last id, as browsers behind an L4 load balancer do.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startNats, startNode, waitFor, waitForClusterSize, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { bySeq, commonTag } from "../helpers/eventIds.ts";
import { ResumingClient, orderProblems } from "../helpers/resumingClient.ts";

let nats: NatsFixture;
let nodes: NodeFixture[] = [];
const live = () => nodes.filter((n) => n.proc.exitCode === null && !n.proc.killed);
const run = Math.random().toString(36).slice(2, 7);

async function ownerOf(node: NodeFixture, match: string): Promise<string> {
  return ((await (await fetch(`${node.url}/cluster/owner/${match}`)).json()) as { owner: string }).owner;
}

/** A match id (unique to this run) that `owner` owns. */
async function matchOwnedBy(owner: NodeFixture, prefix: string): Promise<string> {
  for (let i = 0; ; i++) {
    const m = `${prefix}-${run}-${i}`;
    if ((await ownerOf(owner, m)) === owner.nodeId) return m;
  }
}

/** Publishes through the given nodes in turn with idempotency keys, retrying until acknowledged. */
async function publish(urls: () => string[], match: string, n: number, key: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const list = urls();
    const url = list[(n + attempt) % list.length]!;
    try {
      const res = await fetch(`${url}/matches/${match}/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "tick", data: { n }, key }),
      });
      if (res.status === 201 || res.status === 200) return ((await res.json()) as { id: string }).id;
      await res.body?.cancel();
    } catch {
      /* node gone: next one */
    }
    if (attempt > 200) throw new Error(`could not publish ${key}`);
    await Bun.sleep(50);
  }
}

/** Publishes `perSecond` events until stopped; resolves with the acknowledged ids in publish order. */
function publisher(urls: () => string[], match: string, perSecond: number): { stop(): Promise<string[]> } {
  const acked: string[] = [];
  let stopped = false;
  const done = (async () => {
    for (let n = 0; !stopped; n++) {
      const t0 = Date.now();
      acked.push(await publish(urls, match, n, `${match}-${n}`));
      await Bun.sleep(Math.max(0, 1000 / perSecond - (Date.now() - t0)));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
      return acked;
    },
  };
}

async function metric(node: NodeFixture, name: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1] ?? NaN);
}

/** Every client received exactly the acknowledged ids (`<seq>@<tag>`, one tag), once each, in sequence order. */
function expectExactly(clients: ResumingClient[], acked: string[]): void {
  if (acked.length > 0) commonTag(acked);
  const want = [...acked].sort(bySeq);
  for (const c of clients) {
    const ids = c.ids();
    expect(orderProblems(ids)).toEqual({ duplicates: 0, disorder: 0 });
    expect(ids).toEqual(want);
  }
}

beforeAll(async () => {
  nats = await startNats();
  nodes = await Promise.all([0, 1, 2].map((i) => startNode({ natsUrl: nats.url, nodeId: `c${i}-${run}` })));
  await waitForClusterSize(nodes, 3);
});

afterAll(async () => {
  await Promise.all(live().map((n) => n.kill()));
  await nats?.stop();
});

describe("cluster", () => {
  test("clients on two non-owner nodes receive everything published through any node, in one order", async () => {
    const [a, b, c] = nodes as [NodeFixture, NodeFixture, NodeFixture];
    const match = await matchOwnedBy(a, "order");
    const onB = new ResumingClient(`/matches/${match}/events`, () => [b.url]);
    const onC = new ResumingClient(`/matches/${match}/events`, () => [c.url]);
    await waitFor(async () => onB.snapshots > 0 && onC.snapshots > 0, 10_000, "snapshots");
    const acked = await Promise.all(Array.from({ length: 60 }, (_, n) => publish(() => [a.url, b.url, c.url], match, n, `${match}-${n}`)));
    await waitFor(async () => onB.events.length >= 60 && onC.events.length >= 60, 10_000, "all events");
    await Bun.sleep(200);
    onB.close();
    onC.close();
    expect(onB.ids()).toEqual(onC.ids());
    expectExactly([onB, onC], acked);
  });

  test("200 subscribers of one match on a non-owner node share one upstream feed", async () => {
    const [a, b] = nodes as [NodeFixture, NodeFixture];
    const match = await matchOwnedBy(a, "feeds");
    const before = await metric(b, "touchline_upstream_feeds");
    const clients = Array.from({ length: 200 }, () => new ResumingClient(`/matches/${match}/events`, () => [b.url]));
    await waitFor(async () => clients.every((c) => c.snapshots > 0), 20_000, "200 snapshots");
    expect(await metric(b, "touchline_upstream_feeds")).toBe(before + 1);
    const id = await publish(() => [a.url], match, 0, `${match}-0`);
    await waitFor(async () => clients.every((c) => c.events.length === 1), 10_000, "fan-out");
    for (const c of clients) {
      expect(c.ids()).toEqual([id]);
      c.close();
    }
  });

  test("kill -9 of a match's owner under load: every client ends with every acknowledged event exactly once", async () => {
    const victim = nodes[0]!;
    const match = await matchOwnedBy(victim, "failover");
    const urls = () => live().map((n) => n.url);
    const clients = Array.from({ length: 100 }, (_, i) => new ResumingClient(`/matches/${match}/events`, urls, i));
    await waitFor(async () => clients.every((c) => c.snapshots > 0), 20_000, "100 snapshots");
    // Publish through the survivors only, so no acknowledgement is lost with the victim's sockets.
    const survivors = () =>
      live()
        .filter((n) => n !== victim)
        .map((n) => n.url);
    const pub = publisher(survivors, match, 20);
    await Bun.sleep(3000);
    const killedAt = Date.now();
    await victim.kill();
    const rest = live();
    await waitFor(async () => (await ownerOf(rest[0]!, match)) !== victim.nodeId, 15_000, "ownership to move");
    const movedAfterMs = Date.now() - killedAt;
    await Bun.sleep(5000);
    const acked = await pub.stop();
    await waitFor(async () => clients.every((c) => c.events.length >= acked.length), 20_000, "clients to catch up").catch(() => {});
    await Bun.sleep(300);
    for (const c of clients) c.close();
    const longestGap = Math.max(...clients.map((c) => c.longestGapMs));
    const reconnected = clients.filter((c) => c.reconnects > 0).length;
    console.log(
      `failover: ${acked.length} events; ownership moved after ${movedAfterMs} ms; ${reconnected}/100 clients reconnected; longest gap without events ${longestGap} ms`,
    );
    expectExactly(clients, acked);
    // Replace the victim so the next tests have three nodes again.
    nodes[0] = await startNode({ natsUrl: nats.url, nodeId: `c3-${run}` });
    await waitForClusterSize(live(), 3);
  }, 90_000);

  test("a fourth node joins, then leaves with SIGTERM, under load: nothing lost or doubled; moves stay within bound", async () => {
    const probe = Array.from({ length: 600 }, (_, i) => `probe-${run}-${i}`);
    const owners = async (node: NodeFixture) => Promise.all(probe.map((m) => ownerOf(node, m)));
    const match = `join-${run}`;
    const urls = () => live().map((n) => n.url);
    const clients = Array.from({ length: 30 }, (_, i) => new ResumingClient(`/matches/${match}/events`, urls, i));
    await waitFor(async () => clients.every((c) => c.snapshots > 0), 10_000, "snapshots");
    const pub = publisher(
      () =>
        live()
          .slice(0, 3)
          .map((n) => n.url),
      match,
      20,
    );
    const before = await owners(nodes[1]!);
    const joiner = await startNode({ natsUrl: nats.url, nodeId: `c4-${run}` });
    nodes.push(joiner);
    await waitForClusterSize(live(), 4);
    const after = await owners(nodes[1]!);
    const moved = before.filter((o, i) => o !== after[i]);
    expect(moved.length / probe.length).toBeLessThanOrEqual(1 / 3);
    expect(after.filter((o, i) => o !== before[i]).every((o) => o === joiner.nodeId)).toBe(true);
    await Bun.sleep(2000);
    expect(await joiner.stop()).toBe(0);
    await waitForClusterSize(live(), 3);
    await Bun.sleep(2000);
    const acked = await pub.stop();
    await waitFor(async () => clients.every((c) => c.events.length >= acked.length), 15_000, "catch up").catch(() => {});
    await Bun.sleep(300);
    for (const c of clients) c.close();
    console.log(`join/leave: ${moved.length}/${probe.length} probe matches moved to the joiner; ${acked.length} events`);
    expectExactly(clients, acked);
  }, 90_000);

  test("NATS restarts: nodes reconnect, /readyz is 503 only meanwhile, clients get every acknowledged event once", async () => {
    const match = `natsdown-${run}`;
    const urls = () => live().map((n) => n.url);
    const clients = Array.from({ length: 20 }, (_, i) => new ResumingClient(`/matches/${match}/events`, urls, i));
    await waitFor(async () => clients.every((c) => c.snapshots > 0), 10_000, "snapshots");
    const acked: string[] = [];
    for (let n = 0; n < 10; n++) acked.push(await publish(urls, match, n, `${match}-${n}`));
    const restarting = nats.restart(2000);
    await Bun.sleep(1000);
    const during = await fetch(`${live()[0]!.url}/readyz`);
    expect(during.status).toBe(503);
    await restarting;
    await waitFor(
      async () => (await Promise.all(live().map(async (n) => (await fetch(`${n.url}/readyz`)).status))).every((s) => s === 200),
      20_000,
      "ready again",
    );
    for (let n = 10; n < 30; n++) acked.push(await publish(urls, match, n, `${match}-${n}`));
    await waitFor(async () => clients.every((c) => c.events.length >= acked.length), 20_000, "catch up").catch(() => {});
    await Bun.sleep(300);
    for (const c of clients) c.close();
    expectExactly(clients, acked);
  }, 90_000);
});
