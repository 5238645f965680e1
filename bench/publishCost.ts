/**
 * What a single publish costs one node, this tree against a git ref, measured side by side: both
 * versions run at once, each with its own nats-server, all four pinned to the same core, and the
 * publisher (on the other core) loads them in turns of a second each, the same requests. The CPU each
 * node and each nats-server used is read from /proc per turn, so a slow spell of this shared machine
 * (longer than a turn) slows both alike and the ratio stays (runs of the publish scenario apart swing by a
 * third).
 *
 * Two loads: saturated (each node as fast as it goes, CONNECTIONS keep-alive publishers each with one
 * request in flight, as in the publish scenario's single publishes: many requests per turn of the event
 * loop) and `--isolated-rate` publishes/s to each (events apart from each other, as in the many-channels
 * scenario, where every event wakes the node and the nats-server on its own).
 *
 *   node_modules/.bin/bun bench/publishCost.ts [--base=HEAD] [--isolated-rate=500] [--seconds=5] [--rounds=3] [--token]
 *     [--matches=100] [--this-env=NAME=value ...]
 *
 * `--token`: both nodes verify tokens (TOUCHLINE_JWT_SECRET) and every publish carries one, the same
 * HS256 token throughout, as a producer's would be.
 *
 * `--base` is checked out into a temporary git worktree (its node_modules linked to this tree's), and
 * removed at the end.
 */
import { checkOutBase, thisEnvArgs, thisTreeLabel } from "./baseWorktree.ts";
import { KeepAliveConnection } from "./loadgen/keepalive-client.ts";
import { NatsServer } from "./peers/nats-server.ts";
import { BUN, REPO_ROOT, ServerProcess, freePort, httpAnswers } from "./peers/server-process.ts";
import { cpuMicros } from "./proc-stats.ts";
import { numberArg } from "./scriptArgs.ts";
import { SignJWT } from "jose";

const BASE = process.argv.find((a) => a.startsWith("--base="))?.slice("--base=".length) ?? "HEAD";
const ISOLATED_RATE = numberArg("isolated-rate", 500);
const SECONDS = numberArg("seconds", 5);
const ROUNDS = numberArg("rounds", 3);
const WITH_TOKEN = process.argv.includes("--token");
/** With --token, what PUBLISH_RATE lets the one token publish a second: a feed provider's allowance, above what a node stores. */
const PRODUCER_RATE = 100_000;
/** The nodes' HS256 secret with --token (bench only), and the producer's token signed with it. */
const JWT_SECRET = "publish-cost-bench-secret-0123456789";
const AUTHORIZATION = WITH_TOKEN
  ? `Bearer ${await new SignJWT({ "touchline.publish": "*" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("2h").sign(new TextEncoder().encode(JWT_SECRET))}`
  : undefined;
/** Both nodes and both nats-servers share this core; the publisher (this script) pins itself to the other. */
const SERVER_CPUS = "0";
const PUBLISHER_CPUS = "1";
/** Per node: the publish scenario's 64 single publishers. */
const CONNECTIONS = 64;
/** Matches the publishes are spread over (500 at the default isolated rate: one event a second each, as in many channels). */
const MATCHES = numberArg("matches", 100);
/** `--this-env=NAME=value` (repeatable): set for this tree's node only, to weigh a setting against the base. */
const THIS_ENV = thisEnvArgs();
/** Unmeasured load on each node before the measured turns: the code warms. */
const WARM_MS = 1500;
/** Each node is loaded alone for this long, in turns (see load). */
const PHASE_MS = 1000;
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 5_000;
/** An event with a state patch (the owner folds it), about the size of the publish scenario's. */
const BODY = JSON.stringify({ type: "goal", data: { minute: 12, team: "home", player: "someone", score: [1, 0] }, state: { score: [1, 0] } });

interface Version {
  label: string;
  dir: string;
  env?: Record<string, string>;
}

interface Running {
  version: Version;
  nats: NatsServer;
  node: ServerProcess;
  port: number;
}

interface Cost {
  nodeMicros: number;
  natsMicros: number;
  perSecond: number;
}

async function start(version: Version): Promise<Running> {
  const nats = new NatsServer(SERVER_CPUS);
  await nats.start();
  const port = freePort();
  const node = new ServerProcess(`touchline (${version.label})`, [BUN, "run", "src/main.ts"], {
    cpus: SERVER_CPUS,
    cwd: version.dir,
    env: {
      PORT: String(port),
      NATS_URL: nats.url,
      NODE_ID: `cost-${port}`,
      LOG_LEVEL: "warn",
      ...(WITH_TOKEN ? { TOUCHLINE_JWT_SECRET: JWT_SECRET, PUBLISH_RATE: String(PRODUCER_RATE), PUBLISH_BURST: String(PRODUCER_RATE) } : {}),
      ...version.env,
    },
  });
  await node.waitUntil(() => httpAnswers(`http://127.0.0.1:${port}/readyz`), READY_TIMEOUT_MS);
  return { version, nats, node, port };
}

async function stop(r: Running): Promise<void> {
  await r.node.stop();
  await r.nats.stop();
}

/** Publishes to one node (at `rate`, or as fast as it answers) on its connections for `ms`; resolves with how many were answered. */
async function drive(r: Running, connections: KeepAliveConnection[], rate: number | "saturated", ms: number): Promise<number> {
  const until = performance.now() + ms;
  const intervalMs = rate === "saturated" ? 0 : (connections.length / rate) * 1000;
  let answered = 0;
  await Promise.all(
    connections.map(async (connection, i) => {
      // Spread over the interval so the node sees a steady rate, not bursts of CONNECTIONS.
      let next = performance.now() + (i * intervalMs) / connections.length;
      while (next < until) {
        const wait = next - performance.now();
        if (wait > 0) await Bun.sleep(wait);
        next = Math.max(next + intervalMs, intervalMs === 0 ? performance.now() : 0);
        const answer = await connection.request("POST", `/matches/cost-${i % MATCHES}/events`, BODY, REQUEST_TIMEOUT_MS, AUTHORIZATION);
        if (answer.status !== 201) throw new Error(`${r.version.label}: publish answered ${answer.status} ${answer.body}`);
        answered++;
      }
    }),
  );
  return answered;
}

/**
 * Loads the nodes in turn, PHASE_MS each, for SECONDS of load per node after a first unmeasured turn
 * each (WARM_MS): a slow spell of the machine, which lasts longer than a turn, falls on both alike.
 * Returns each node's cost per publish.
 */
async function load(nodes: Running[], rate: number | "saturated"): Promise<Cost[]> {
  const connections = await Promise.all(
    nodes.map((r) => Promise.all(Array.from({ length: CONNECTIONS }, () => KeepAliveConnection.open("127.0.0.1", r.port)))),
  );
  const totals = nodes.map(() => ({ node: 0, nats: 0, answered: 0, ms: 0 }));
  try {
    for (const [i, r] of nodes.entries()) await drive(r, connections[i]!, rate, WARM_MS);
    const turns = Math.max(1, Math.round((SECONDS * 1000) / PHASE_MS));
    for (let turn = 0; turn < turns; turn++) {
      for (const [i, r] of nodes.entries()) {
        const node = cpuMicros([r.node.pid]);
        const nats = cpuMicros([r.nats.pid!]);
        const startedAt = performance.now();
        const answered = await drive(r, connections[i]!, rate, PHASE_MS);
        const t = totals[i]!;
        t.ms += performance.now() - startedAt;
        t.node += cpuMicros([r.node.pid]) - node;
        t.nats += cpuMicros([r.nats.pid!]) - nats;
        t.answered += answered;
      }
    }
  } finally {
    for (const c of connections.flat()) c.close();
  }
  return totals.map((t) => ({ nodeMicros: t.node / t.answered, natsMicros: t.nats / t.answered, perSecond: t.answered / (t.ms / 1000) }));
}

const fmt = (n: number): string => n.toFixed(1);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  Bun.spawnSync(["taskset", "-cp", PUBLISHER_CPUS, String(process.pid)], { stdout: "ignore", stderr: "ignore" });
  const base = await checkOutBase(BASE);
  const baseCommit = base.commit;
  const versions: Version[] = [
    { label: `base ${baseCommit}`, dir: base.dir },
    { label: thisTreeLabel(THIS_ENV), dir: REPO_ROOT, env: THIS_ENV },
  ];
  const rows: string[] = [];
  const ratios = new Map<string, number[]>();
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, rate] of [
        ["saturated", "saturated"],
        ["isolated", ISOLATED_RATE],
      ] as const) {
        // A fresh pair per load, started in alternating order (neither always warms first).
        const order = round % 2 === 0 ? [...versions].reverse() : versions;
        const running: Running[] = [];
        try {
          for (const v of order) running.push(await start(v));
          const costs = await load(running, rate);
          const base = costs[running.findIndex((r) => r.version === versions[0])]!;
          const mine = costs[running.findIndex((r) => r.version === versions[1])]!;
          const key = `${name} node`;
          ratios.set(key, [...(ratios.get(key) ?? []), mine.nodeMicros / base.nodeMicros]);
          ratios.set(`${name} nats`, [...(ratios.get(`${name} nats`) ?? []), mine.natsMicros / base.natsMicros]);
          rows.push(
            `| ${round} | ${rate === "saturated" ? name : `${name}, ${rate}/s each`} | ${fmt(base.nodeMicros)} / ${fmt(base.natsMicros)} | ${fmt(mine.nodeMicros)} / ${fmt(mine.natsMicros)} | ${(mine.nodeMicros / base.nodeMicros).toFixed(2)}× | ${Math.round(base.perSecond)} / ${Math.round(mine.perSecond)} |`,
          );
          console.log(rows.at(-1));
        } finally {
          for (const r of running) await stop(r);
        }
      }
    }
  } finally {
    await base.remove();
  }
  console.log(
    `\nCPU per single publish${WITH_TOKEN ? " (each with a token)" : ""}, base ${baseCommit} against this tree, side by side on CPU ${SERVER_CPUS} (node µs / nats-server µs):\n`,
  );
  console.log("| round | load | base | this tree | node ÷ base | publishes/s (base / this) |");
  console.log("| ---: | --- | ---: | ---: | ---: | ---: |");
  for (const row of rows) console.log(row);
  console.log("");
  for (const [key, values] of ratios) console.log(`${key}: median ${median(values).toFixed(2)}× base (${values.map((v) => v.toFixed(2)).join(", ")})`);
}

await main();
process.exit(0);
