/**
 * The fault suite's cluster: a real nats-server, three real nodes each reaching it through its own
 * fault proxy (so one node's link can fail while the others' stay up), and a round-robin L4 balancer over
 * the nodes for clients (no health checks, no stickiness: what a plain cloud L4 balancer gives).
 */
import { startNats, startNode, waitForClusterSize, freePort, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultProxy.ts";
import { startTcpBalancer } from "../../cluster/tcpBalancer.ts";

export interface FaultNode {
  id: string;
  fixture: NodeFixture;
  /** The node's link to NATS. */
  link: FaultProxy;
}

export interface FaultCluster {
  nats: NatsFixture;
  nodes: FaultNode[];
  /** Where clients connect: the balancer. */
  entryUrl: string;
  node(id: string): FaultNode;
  /** The node that owns `match` now, as the cluster answers it. */
  ownerOf(match: string): Promise<FaultNode>;
  /** Stops NATS, deletes its store, and starts it again on the same port after `downMs`. */
  loseNatsStore(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

const NODES = 3;

async function killNode(node: NodeFixture): Promise<void> {
  if (node.proc.exitCode !== null) return;
  node.proc.kill("SIGCONT"); // a test that paused it may have failed before waking it
  await node.kill();
}

export async function startFaultCluster(opts: { env?: Record<string, string> } = {}): Promise<FaultCluster> {
  const nats = await startNats();
  const nodes: FaultNode[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => killNode(n.fixture)));
    for (const n of nodes) n.link.stop();
    await nats.stop();
  };
  try {
    await Promise.all(
      Array.from({ length: NODES }, async (_, i) => {
        const id = `f${i + 1}`;
        const link = startFaultProxy({ target: { host: "127.0.0.1", port: nats.port } });
        const fixture = await startNode({ natsUrl: `nats://127.0.0.1:${link.port}`, nodeId: id, env: opts.env });
        nodes.push({ id, fixture, link });
      }),
    );
  } catch (e) {
    await cleanup();
    throw e;
  }
  nodes.sort((a, b) => a.id.localeCompare(b.id));
  await waitForClusterSize(
    nodes.map((n) => n.fixture),
    NODES,
  );
  const balancer = startTcpBalancer({
    port: await freePort(),
    hostname: "127.0.0.1",
    backends: () => nodes.map((n) => ({ host: "127.0.0.1", port: n.fixture.port })),
  });
  const node = (id: string): FaultNode => {
    const n = nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  };
  return {
    nats,
    nodes,
    entryUrl: `http://127.0.0.1:${balancer.port}`,
    node,
    async ownerOf(match) {
      const res = await fetch(`${nodes[0]!.fixture.url}/cluster/owner/${match}`, { signal: AbortSignal.timeout(3000) });
      return node(((await res.json()) as { owner: string }).owner);
    },
    async loseNatsStore(downMs) {
      // stop() removes the store folder; restart() launches on the same port and folder, found empty.
      await nats.stop();
      await nats.restart(downMs);
    },
    async stop() {
      balancer.stop();
      await cleanup();
    },
  };
}
