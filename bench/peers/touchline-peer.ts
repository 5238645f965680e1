/**
 * Touchline (`src/main.ts`): one node, or a cluster of nodes sharing one JetStream nats-server.
 * The nats-server counts as part of the peer: its CPU and memory are the price of durability and
 * replay.
 *
 * A cluster's streams are dealt over its nodes by the load generator itself, like DNS round robin,
 * rather than through an L4 proxy process: a proxy holds two descriptors per stream, so under this
 * machine's 20,000-file limit it would cap the whole cluster at 10,000 streams. Publishes also go
 * to the nodes in turn, so most streams and publishes reach a node that does not own the match.
 */
import { existsSync } from "node:fs";
import { encodeTickPublish } from "../tick.ts";
import { NatsServer } from "./nats-server.ts";
import type { Peer, SubscribeTarget } from "./peer.ts";
import { BUN, REPO_ROOT, ServerProcess, freePort, httpAnswers, postJson } from "./server-process.ts";

export const TOUCHLINE_ENTRY = `${REPO_ROOT}src/main.ts`;
const START_TIMEOUT_MS = 20_000;
/** Comment heartbeats as in production, yet rare enough not to colour a 20 s scenario. */
const HEARTBEAT_MS = 15_000;
const CLUSTER_PROBE_TIMEOUT_MS = 2_000;
/**
 * Extra Bun flags for the nodes, for diagnosis only: `TOUCHLINE_BENCH_BUN_FLAGS="--cpu-prof-md
 * --cpu-prof-dir=/tmp/prof"` writes each node's CPU profile when it stops. Never set for figures.
 */
/**
 * The nodes' lag gauge keeps the worst probe of this window: the many-matches scenario scrapes it every
 * 250 ms and charges each reading to the step it is in, so a stall must leave the gauge within a step.
 */
const LAG_WINDOW_MS = 1000;
const NODE_BUN_FLAGS = (process.env.TOUCHLINE_BENCH_BUN_FLAGS ?? "").split(/\s+/).filter((flag) => flag !== "");

export function touchlineAvailable(): boolean {
  return existsSync(TOUCHLINE_ENTRY);
}

/** Another build of the node than this tree's at its defaults (channelsAB.ts weighs two against each other). */
export interface TouchlineBuild {
  /** Short id in logs (channelsAB.ts: `this`, `base`). */
  name: string;
  title: string;
  /** A checkout of this repository, ending in a slash (REPO_ROOT is this tree). */
  root: string;
  /** Extra settings for its nodes. */
  env?: Record<string, string>;
}

interface TouchlineNode {
  id: string;
  port: number;
  process: ServerProcess;
}

export class TouchlinePeer implements Peer {
  readonly name: string;
  readonly title: string;
  readonly resumes = true;
  private readonly nats: NatsServer;
  private running: TouchlineNode[] = [];
  private nextPublishNode = 0;

  /** `streamCap`: each node's MAX_CONNECTIONS. */
  constructor(
    private readonly cpus: string,
    readonly nodes: number,
    readonly streamCap: number,
    private readonly build?: TouchlineBuild,
  ) {
    this.nats = new NatsServer(cpus);
    this.name = build?.name ?? (nodes === 1 ? "touchline" : `touchline${nodes}`);
    this.title = build?.title ?? (nodes === 1 ? "Touchline, 1 node + NATS" : `Touchline, ${nodes} nodes + NATS`);
  }

  async start(): Promise<void> {
    await this.nats.start();
    for (let i = 0; i < this.nodes; i++) {
      const port = freePort();
      const id = `bench-${i + 1}-${port}`;
      const root = this.build?.root ?? REPO_ROOT;
      const process = new ServerProcess(`${this.name} node ${id}`, [BUN, ...NODE_BUN_FLAGS, "run", `${root}src/main.ts`], {
        cpus: this.cpus,
        cwd: root,
        env: {
          PORT: String(port),
          NATS_URL: this.nats.url,
          NODE_ID: id,
          MAX_CONNECTIONS: String(this.streamCap),
          HEARTBEAT_MS: String(HEARTBEAT_MS),
          EVENT_LOOP_LAG_WINDOW_MS: String(LAG_WINDOW_MS),
          ...this.build?.env,
        },
      });
      this.running.push({ id, port, process });
    }
    for (const node of this.running) {
      await node.process.waitUntil(() => httpAnswers(`http://127.0.0.1:${node.port}/readyz`), START_TIMEOUT_MS);
    }
    // Streams must not start while membership settles, or ownership moves under them mid-scenario.
    for (const node of this.running) {
      await node.process.waitUntil(() => this.seesWholeCluster(node), START_TIMEOUT_MS);
    }
  }

  subscribeTarget(): SubscribeTarget {
    return { ports: this.running.map((n) => n.port), pathTemplate: "/matches/{channel}/events" };
  }

  /** Touchline stamps `ts` itself when JetStream has stored the event. */
  publish(channel: string, seq: number): Promise<void> {
    const node = this.running[this.nextPublishNode++ % this.running.length] as TouchlineNode;
    return postJson(`http://127.0.0.1:${node.port}/matches/${channel}/events`, encodeTickPublish(seq));
  }

  pids(): number[] {
    return [...this.nodePids(), ...this.natsPids()];
  }

  /** The nodes' processes alone (the issue-12 scenarios report node and nats-server CPU apart). */
  nodePids(): number[] {
    return this.running.map((n) => n.process.pid);
  }

  natsPids(): number[] {
    return this.nats.pid === null ? [] : [this.nats.pid];
  }

  /** The first node's HTTP port: the publish and many-matches scenarios drive one node. */
  get nodePort(): number {
    const node = this.running[0];
    if (node === undefined) throw new Error(`${this.name} is not running`);
    return node.port;
  }

  /** The nats-server the nodes use, for the raw JetStream baseline measured against it. */
  get natsUrl(): string {
    return this.nats.url;
  }

  get natsMonitorUrl(): string {
    return this.nats.monitorUrl;
  }

  async stop(): Promise<void> {
    await Promise.all(this.running.map((n) => n.process.stop()));
    this.running = [];
    await this.nats.stop();
  }

  private async seesWholeCluster(node: TouchlineNode): Promise<boolean> {
    if (this.nodes === 1) return true;
    const response = await fetch(`http://127.0.0.1:${node.port}/cluster`, { signal: AbortSignal.timeout(CLUSTER_PROBE_TIMEOUT_MS) });
    const view = (await response.json()) as { nodes?: Array<{ id?: string }> };
    const seen = new Set((view.nodes ?? []).map((n) => n.id));
    return this.running.every((n) => seen.has(n.id));
  }
}
