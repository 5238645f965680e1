/**
 * Test fixtures: a real JetStream nats-server on a free port in a temp folder, and real Touchline nodes
 * as child processes, talking over real sockets.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freeListenPort } from "./listenPort.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BUN = process.execPath;

/** A port for a server a test starts (see listenPort.ts). */
export async function freePort(): Promise<number> {
  return freeListenPort();
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

async function portOpen(port: number): Promise<boolean> {
  try {
    const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    sock.end();
    return true;
  } catch {
    return false;
  }
}

export interface NatsFixture {
  url: string;
  port: number;
  storeDir: string;
  /** What the server printed, every launch (its last NATS_OUTPUT_KEEP characters), for a failing test's evidence. */
  output(): string;
  stop(): Promise<void>;
  /** Stops and starts the server again on the same port with the same store. */
  restart(downMs?: number): Promise<void>;
}

/** How much of nats-server's output a fixture keeps: its start-up and warnings, not a flood. */
const NATS_OUTPUT_KEEP = 256 * 1024;

/** JetStream answering, not just the port open: a restarted server takes a moment to recover its store. */
async function jetStreamHealthy(monitorPort: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz?js-enabled-only=true`, { signal: AbortSignal.timeout(1000) });
  return res.status === 200 && ((await res.json()) as { status?: string }).status === "ok";
}

/** `args`: more nats-server flags (authentication, TLS, `-c` a config file), given at every launch. */
export async function startNats(opts: { args?: string[] } = {}): Promise<NatsFixture> {
  const storeDir = mkdtempSync(join(tmpdir(), "touchline-nats-"));
  const port = await freePort();
  const monitorPort = await freePort();
  let proc: Subprocess | undefined;
  let out = "";
  const keep = (text: string): void => {
    out += text;
    if (out.length > NATS_OUTPUT_KEEP) out = out.slice(-NATS_OUTPUT_KEEP);
  };
  const collect = async (s: ReadableStream<Uint8Array>): Promise<void> => {
    const dec = new TextDecoder();
    for await (const chunk of s) keep(dec.decode(chunk));
  };
  const launch = async (): Promise<void> => {
    keep(`--- launch at ${new Date().toISOString()}\n`);
    proc = Bun.spawn(["nats-server", "-js", "-sd", storeDir, "-p", String(port), "-m", String(monitorPort), "-a", "127.0.0.1", ...(opts.args ?? [])], {
      stdout: "pipe",
      stderr: "pipe",
    });
    void collect(proc.stdout as ReadableStream<Uint8Array>);
    void collect(proc.stderr as ReadableStream<Uint8Array>);
    try {
      await waitFor(() => portOpen(port), 10_000, "nats-server");
      await waitFor(() => jetStreamHealthy(monitorPort), 20_000, "nats-server's JetStream");
    } catch (e) {
      // What the server printed by the time the wait gave up, not when it began.
      throw new Error(`${(e as Error).message}\n${out}`);
    }
  };
  const halt = async (): Promise<void> => {
    if (!proc) return;
    proc.kill("SIGTERM");
    await proc.exited;
    proc = undefined;
  };
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    output: () => out,
    stop: async () => {
      await halt();
      rmSync(storeDir, { recursive: true, force: true });
    },
    restart: async (downMs = 500) => {
      await halt();
      await Bun.sleep(downMs);
      await launch();
    },
  };
}

export interface NodeFixture {
  url: string;
  port: number;
  nodeId: string;
  proc: Subprocess;
  output(): string;
  stop(): Promise<number>;
  kill(): Promise<void>;
}

export interface NodeOptions {
  natsUrl: string;
  nodeId?: string;
  port?: number;
  env?: Record<string, string>;
  /** Wait for /readyz (default true). */
  ready?: boolean;
}

let nodeCounter = 0;

export async function startNode(opts: NodeOptions): Promise<NodeFixture> {
  const port = opts.port ?? (await freePort());
  const nodeId = opts.nodeId ?? `n${++nodeCounter}-${port}`;
  let out = "";
  const proc = Bun.spawn([BUN, "run", join(ROOT, "src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      NATS_URL: opts.natsUrl,
      NODE_ID: nodeId,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
      MEMBERSHIP_RENEW_MS: "500",
      MEMBERSHIP_TTL: "3000",
      ...opts.env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const collect = async (s: ReadableStream<Uint8Array>, echo: boolean): Promise<void> => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      const text = dec.decode(chunk);
      out += text;
      if (echo && process.env.TEST_ECHO) process.stderr.write(`[${nodeId}] ${text}`);
    }
  };
  void collect(proc.stdout as ReadableStream<Uint8Array>, true);
  void collect(proc.stderr as ReadableStream<Uint8Array>, true);
  const url = `http://127.0.0.1:${port}`;
  if (opts.ready !== false) {
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, 20_000, `node ${nodeId} ready\n${out}`).catch((e) => {
      proc.kill("SIGKILL");
      throw new Error(`${(e as Error).message}\n${out}`);
    });
  }
  return {
    url,
    port,
    nodeId,
    proc,
    output: () => out,
    stop: async () => {
      proc.kill("SIGTERM");
      return await proc.exited;
    },
    kill: async () => {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

export interface ClusterFixture {
  nats: NatsFixture;
  natsUrl: string;
  nodes: NodeFixture[];
  /** The L4 entry port spreading connections over the nodes (a TCP proxy written for tests). */
  entryUrl: string;
  stop(): Promise<void>;
}

export async function startCluster(opts: { nodes?: number; env?: Record<string, string> } = {}): Promise<ClusterFixture> {
  const nats = await startNats();
  const nodes = await Promise.all(Array.from({ length: opts.nodes ?? 3 }, () => startNode({ natsUrl: nats.url, env: opts.env })));
  const { startTcpBalancer } = await import("../../cluster/tcpBalancer.ts");
  const entryPort = await freePort();
  const balancer = startTcpBalancer({ port: entryPort, hostname: "127.0.0.1", backends: () => nodes.map((n) => ({ host: "127.0.0.1", port: n.port })) });
  await waitForClusterSize(nodes, nodes.length);
  return {
    nats,
    natsUrl: nats.url,
    nodes,
    entryUrl: `http://127.0.0.1:${entryPort}`,
    stop: async () => {
      balancer.stop();
      await Promise.all(nodes.map((n) => (n.proc.exitCode === null ? n.kill() : Promise.resolve())));
      await nats.stop();
    },
  };
}

/** Waits until every given node sees exactly `size` live members. */
export async function waitForClusterSize(nodes: NodeFixture[], size: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      const views = await Promise.all(nodes.map(async (n) => (await (await fetch(`${n.url}/cluster`)).json()) as { nodes: unknown[] }));
      return views.every((v) => v.nodes.length === size);
    },
    timeoutMs,
    `cluster of ${size}`,
  );
}

/**
 * Runs `body`; when it fails, the error carries the nodes' last output (at the test's LOG_LEVEL), so a
 * failure that does not come back when run again still leaves its evidence.
 */
export async function withNodeLogs<T>(nodes: readonly NodeFixture[], body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    const logs = nodes.map((n) => `--- ${n.nodeId}, last output:\n${n.output().slice(-LOG_TAIL_CHARS)}`).join("\n");
    if (e instanceof Error) e.message += `\n${logs}`;
    throw e;
  }
}

/** How much of each node's output withNodeLogs adds to an error. */
const LOG_TAIL_CHARS = 8000;

export { waitFor };
