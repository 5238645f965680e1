/**
 * Two live processes given the same NODE_ID (a copied environment file, a template): the one started
 * second stops with exit code 2 and a line naming the first's URL; the first keeps serving and the
 * cluster lists it alone under that id. A node restarted under its own NODE_ID after a crash, whose
 * old entry is still fresh, is not mistaken for a twin.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type NatsFixture, type NodeFixture, startNats, startNode, waitFor, withNodeLogs } from "../helpers/cluster.ts";
import { deliversOneEvent } from "../helpers/roundTrip.ts";

const TWIN_ID = "twin";

let nats: NatsFixture;
const nodes: NodeFixture[] = [];

beforeAll(async () => {
  nats = await startNats();
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => (n.proc.exitCode === null ? n.kill() : Promise.resolve())));
  await nats.stop();
});

async function start(nodeId: string, ready = true): Promise<NodeFixture> {
  const node = await startNode({ natsUrl: nats.url, nodeId, ready, env: { LOG_LEVEL: "info" } });
  nodes.push(node);
  return node;
}

async function clusterView(node: NodeFixture): Promise<{ node: string; nodes: { id: string; url: string }[] }> {
  return (await (await fetch(`${node.url}/cluster`)).json()) as { node: string; nodes: { id: string; url: string }[] };
}

test("a second node with a live node's NODE_ID stops (exit 2); the first keeps its place and serves", async () => {
  const first = await start(TWIN_ID);
  const other = await start("other");
  await withNodeLogs(nodes, async () => {
    await waitFor(async () => (await clusterView(other)).nodes.length === 2, 15_000, "a cluster of two");

    const second = await start(TWIN_ID, false);
    const code = await Promise.race([second.proc.exited, Bun.sleep(15_000).then(() => "still running")]);
    expect(code).toBe(2);
    expect(second.output()).toContain(`NODE_ID \\"${TWIN_ID}\\" is taken by a live node at ${first.url}`);
    expect(first.output()).toContain("another process renewed this node's NODE_ID");

    // The first one is still the node of that id, everywhere, and serves.
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    await waitFor(
      async () => {
        const view = await clusterView(other);
        return view.nodes.length === 2 && view.nodes.some((n) => n.id === TWIN_ID && n.url === first.url);
      },
      10_000,
      "the other node listing the first twin's url",
    );
    await deliversOneEvent(other.url, first.url, "twin-m1");
    await deliversOneEvent(first.url, other.url, "twin-m2");
  });
}, 90_000);

test("a node restarted under its own NODE_ID right after a crash is not taken for a twin", async () => {
  const crashed = nodes.find((n) => n.nodeId === TWIN_ID && n.proc.exitCode === null);
  expect(crashed).toBeDefined();
  await crashed!.kill();
  // Its entry is still fresh (MEMBERSHIP_TTL 3 s in tests): the restart renews over it at once.
  const restarted = await start(TWIN_ID);
  await withNodeLogs(nodes, async () => {
    // Several renewals of the old entry's lifetime later, it is still there and ready.
    await Bun.sleep(4_000);
    expect(restarted.proc.exitCode).toBeNull();
    expect((await fetch(`${restarted.url}/readyz`)).status).toBe(200);
    expect(restarted.output()).not.toContain("is taken by a live node");
    const view = await clusterView(restarted);
    expect(view.nodes.find((n) => n.id === TWIN_ID)?.url).toBe(restarted.url);
  });
}, 60_000);
