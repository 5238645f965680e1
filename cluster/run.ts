/**
 * `bun run cluster`: the local twin of compose.yaml. A JetStream nats-server (unless one answers at
 * NATS_URL), three Touchline nodes, one L4 entry port spreading TCP connections over them (haproxy when
 * installed, else the Bun balancer), and the demo producer. Prints the URLs; Ctrl-C or SIGTERM stops
 * it all in order: producer, nodes (SIGTERM, so they drain and hand their matches over), entry, NATS.
 *
 * Env: ENTRY_PORT (3000; nodes take the next NODES ports), ENTRY_HOST (127.0.0.1), NODES (3),
 * NATS_URL (nats://127.0.0.1:4222), ENTRY_BALANCER (haproxy | bun, default: haproxy when on PATH),
 * PRODUCER (set to "off" for no demo traffic), LOG_LEVEL (info), and the producer's MATCHES and SPEED.
 * Child logs go to .tmp/cluster/.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startEntry, type BalancerKind, type Entry } from "./local/entry.ts";
import { ensureNats, type LocalNats } from "./local/nats.ts";
import { Service, tcpOpen, waitUntil } from "./local/service.ts";

/** Stream rotation for the local cluster, as in compose.yaml. */
const LOCAL_MAX_STREAM_AGE = "15m";
const ROOT = join(import.meta.dir, "..");
const WORK_DIR = join(ROOT, ".tmp", "cluster");
const BUN = process.execPath;

const DEFAULT_ENTRY_PORT = 3000;
const DEFAULT_NODES = 3;
const NODE_READY_TIMEOUT_MS = 30_000;
/** A node drains (DRAIN, 5 s by default) before it exits; past this it is killed. */
const NODE_STOP_GRACE_MS = 15_000;
const PRODUCER_STOP_GRACE_MS = 8_000;
const NATS_STOP_GRACE_MS = 5_000;

interface RunConfig {
  entryHost: string;
  entryPort: number;
  nodes: number;
  natsUrl: string;
  balancer: BalancerKind | undefined;
  producer: boolean;
  logLevel: string;
}

function fail(message: string): never {
  process.stderr.write(`cluster: ${message}\n`);
  process.exit(2);
}

function wholeNumber(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) fail(`invalid ${name}: expected ${min}..${max}, got "${raw}"`);
  return Number(raw);
}

function readConfig(): RunConfig {
  const nodes = wholeNumber("NODES", DEFAULT_NODES, 1, 32);
  const entryPort = wholeNumber("ENTRY_PORT", DEFAULT_ENTRY_PORT, 1, 65535 - nodes);
  const balancer = process.env.ENTRY_BALANCER?.trim() || undefined;
  if (balancer !== undefined && balancer !== "haproxy" && balancer !== "bun") fail(`invalid ENTRY_BALANCER: expected haproxy or bun, got "${balancer}"`);
  if (balancer === "haproxy" && !Bun.which("haproxy")) fail("ENTRY_BALANCER=haproxy but haproxy is not on PATH");
  return {
    entryHost: process.env.ENTRY_HOST?.trim() || "127.0.0.1",
    entryPort,
    nodes,
    natsUrl: process.env.NATS_URL?.trim() || "nats://127.0.0.1:4222",
    balancer,
    producer: process.env.PRODUCER?.trim() !== "off",
    logLevel: process.env.LOG_LEVEL?.trim() || "info",
  };
}

class LocalCluster {
  nats: LocalNats | undefined;
  nodes: Service[] = [];
  entry: Entry | undefined;
  producer: Service | undefined;

  constructor(readonly config: RunConfig) {}

  nodePort(i: number): number {
    return this.config.entryPort + 1 + i;
  }

  nodeUrl(i: number): string {
    return `http://${this.config.entryHost}:${this.nodePort(i)}`;
  }

  async start(): Promise<void> {
    const c = this.config;
    mkdirSync(WORK_DIR, { recursive: true });
    for (const port of [c.entryPort, ...Array.from({ length: c.nodes }, (_, i) => this.nodePort(i))]) {
      if (await tcpOpen(c.entryHost, port)) throw new Error(`port ${port} is already in use (is another cluster still running?)`);
    }
    this.nats = await ensureNats(c.natsUrl, WORK_DIR);

    for (let i = 0; i < c.nodes; i++) {
      const name = `node${i + 1}`;
      this.nodes.push(
        new Service({
          name,
          cmd: [BUN, "run", join(ROOT, "src/main.ts")],
          cwd: ROOT,
          env: {
            PORT: String(this.nodePort(i)),
            HOST: c.entryHost,
            ADVERTISED_HOST: c.entryHost,
            NATS_URL: c.natsUrl,
            NODE_ID: name,
            LOG_LEVEL: c.logLevel,
            // Streams rotate so load spreads over nodes added later (the operator's value wins).
            MAX_STREAM_AGE: process.env.MAX_STREAM_AGE?.trim() || LOCAL_MAX_STREAM_AGE,
          },
          logFile: join(WORK_DIR, `${name}.log`),
        }),
      );
    }
    this.entry = await startEntry({
      host: c.entryHost,
      port: c.entryPort,
      nodes: this.nodes.map((n, i) => ({ name: n.name, host: c.entryHost, port: this.nodePort(i) })),
      workDir: WORK_DIR,
      prefer: c.balancer,
    });
    await Promise.all(
      this.nodes.map((node, i) =>
        waitUntil(`${node.name} /readyz`, async () => (await fetch(`${this.nodeUrl(i)}/readyz`)).status === 200, {
          timeoutMs: NODE_READY_TIMEOUT_MS,
          everyMs: 200,
          abandon: () => (node.running ? undefined : `exited; its log ends with:\n${node.logTail()}`),
        }),
      ),
    );
    if (c.producer) {
      this.producer = new Service({
        name: "producer",
        cmd: [BUN, "run", join(ROOT, "cluster/producer.ts")],
        cwd: ROOT,
        env: { TOUCHLINE_URL: this.entry.url },
        // Its one-line summaries every 10 s are the cluster's heartbeat in the terminal.
        logFile: "inherit",
      });
    }
  }

  describe(): string {
    const c = this.config;
    const entry = this.entry!;
    const nats = this.nats!;
    const rows: [string, string][] = [
      ["page", `${entry.url}/`],
      [
        "entry",
        `${entry.url}  (${entry.kind === "haproxy" ? `haproxy, config ${entry.configFile}, log ${entry.logFile}` : "Bun TCP balancer; haproxy is not installed"}), round-robin over the nodes`,
      ],
      ...this.nodes.map((n, i): [string, string] => [n.name, `${this.nodeUrl(i)}  (log ${n.opts.logFile})`]),
      ["NATS", `${nats.url}  (${nats.service ? `started here, store ${nats.storeDir}` : "already running, left alone"})`],
      ["producer", c.producer ? `${process.env.MATCHES || "120"} matches through the entry port` : "off (PRODUCER=off)"],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    return [
      "Touchline local cluster is up:",
      ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
      `  try: curl ${entry.url}/cluster · curl ${entry.url}/matches · curl -N ${entry.url}/matches/<match>/events`,
      "Ctrl-C stops everything.",
    ].join("\n");
  }

  /** Stops in dependency order; every step runs even if an earlier one failed. */
  async stop(log: (line: string) => void): Promise<void> {
    if (this.producer) log(`producer ${await this.producer.stop("SIGTERM", PRODUCER_STOP_GRACE_MS)}`);
    const nodeResults = await Promise.all(this.nodes.map(async (n) => `${n.name} ${await n.stop("SIGTERM", NODE_STOP_GRACE_MS)}`));
    for (const r of nodeResults) log(r);
    if (this.entry) {
      await this.entry.stop();
      log(`entry (${this.entry.kind}) stopped`);
    }
    // SIGINT: nats-server shuts down the same graceful way as on SIGTERM but exits 0.
    if (this.nats?.service) log(`nats ${await this.nats.service.stop("SIGINT", NATS_STOP_GRACE_MS)}`);
  }
}

const log = (line: string): void => {
  process.stdout.write(`cluster: ${line}\n`);
};

const cluster = new LocalCluster(readConfig());
let stopping = false;
const shutdown = async (why: string, code: number): Promise<void> => {
  if (stopping) return;
  stopping = true;
  log(`${why}: stopping (nodes drain first)`);
  await cluster.stop(log).catch((err: unknown) => log(`error while stopping: ${String(err)}`));
  log("stopped");
  process.exit(code);
};
process.on("SIGINT", () => void shutdown("SIGINT", 0));
process.on("SIGTERM", () => void shutdown("SIGTERM", 0));

try {
  await cluster.start();
} catch (err) {
  process.stderr.write(`cluster: ${(err as Error).message}\n`);
  await shutdown("start-up failed", 1);
}
if (!stopping) {
  process.stdout.write(`${cluster.describe()}\n`);
  // A node that dies on its own is reported; the rest keep running (that is what the cluster is for).
  for (const node of cluster.nodes) {
    void node.proc.exited.then((code) => {
      if (!stopping) log(`${node.name} exited on its own (${code ?? node.proc.signalCode}); see ${node.opts.logFile}`);
    });
  }
}
