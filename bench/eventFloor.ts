/**
 * What one isolated event costs against its floors, side by side. The many-channels scenario sends events
 * apart from each other (500 a second over 500 matches), so every event wakes the servers on its own;
 * this script splits that cost three ways, each against what could not be cheaper on this machine:
 *
 * - a Touchline node's publish (HTTP in, JetStream store and ack, the owner's work, HTTP out) against a
 *   bare Bun server's (bench/peers/bare-bun-server.ts: the same request answered from memory);
 * - the node's nats-server's work per event against a raw JetStream publish of the same bytes, sent by
 *   this script (nats.js, awaiting each ack) to a second nats-server's stream configured like
 *   Touchline's event stream (file storage, a retention, a duplicate window, direct gets);
 * - the raw publisher's own CPU per publish (on the other core): what one JetStream round trip costs a
 *   Bun client.
 *
 * Every server shares one core and is loaded alone in turns of a second, paced as the scenario paces its
 * publishes (one at a time, each awaited), so a slow spell of this shared machine, which lasts longer than
 * a turn, falls on all of them alike. No streams are open: what a delivery costs is the same write for
 * every server (bench/README.md, "Where the time goes").
 *
 *   node_modules/.bin/bun bench/eventFloor.ts [--rate=500] [--matches=500] [--turns=15] [--rounds=3]
 */
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { KeepAliveConnection } from "./loadgen/keepalive-client.ts";
import { NatsServer } from "./peers/nats-server.ts";
import { BUN, ServerProcess, freePort, httpAnswers } from "./peers/server-process.ts";
import { cpuMicros, threadCpuMicros } from "./proc-stats.ts";
import { sendPaced } from "./publisher.ts";
import { numberArg } from "./scriptArgs.ts";
import { encodeTickPublish } from "./tick.ts";

const RATE = numberArg("rate", 500);
const MATCHES = numberArg("matches", 500);
/** Turns per round, for each of the three loads. */
const TURNS = numberArg("turns", 15);
const ROUNDS = numberArg("rounds", 3);
const SERVER_CPUS = "0";
const PUBLISHER_CPUS = "1";
const TURN_MS = 1000;
/** Unmeasured load on each before the first round: the code warms. */
const WARM_MS = 3000;
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 5_000;
const RAW_STREAM = "floor";
/** Touchline's defaults (settings.ts RETENTION, eventLog.ts's duplicate window), in ns as JetStream takes them. */
const RAW_RETENTION_NS = 24 * 3600 * 1e9;
const RAW_DUPLICATE_WINDOW_NS = 120 * 1e9;

/** One of the three loads: sends event `i` and resolves when it is acknowledged. */
interface Load {
  send(i: number): Promise<void>;
  /** CPU counters read around each turn, µs: name → reading. */
  meter(): Record<string, number>;
}

function httpLoad(connection: KeepAliveConnection, path: (i: number) => string, pid: number, extra: Record<string, () => number> = {}): Load {
  return {
    async send(i) {
      const answer = await connection.request("POST", path(i), encodeTickPublish(i), REQUEST_TIMEOUT_MS, undefined);
      if (answer.status !== 201) throw new Error(`publish answered ${answer.status} ${answer.body}`);
    },
    meter() {
      const main = threadCpuMicros(pid);
      const readings: Record<string, number> = { total: cpuMicros([pid]), user: main.user, system: main.system };
      for (const [name, read] of Object.entries(extra)) readings[name] = read();
      return readings;
    },
  };
}

/** Sends for `ms` at RATE a second, paced as the many-channels scenario is; returns how many were acknowledged. */
function paced(load: Load, ms: number, first: number): Promise<number> {
  return sendPaced({ ratePerSecond: RATE, maxEvents: Number.POSITIVE_INFINITY, maxMs: ms }, (i) => load.send(first + i));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const us = (n: number): string => n.toFixed(0);

async function main(): Promise<void> {
  Bun.spawnSync(["taskset", "-cp", PUBLISHER_CPUS, String(process.pid)], { stdout: "ignore", stderr: "ignore" });
  const touchlineNats = new NatsServer(SERVER_CPUS);
  const rawNats = new NatsServer(SERVER_CPUS);
  const processes: { stop(): Promise<void> }[] = [];
  const connections: KeepAliveConnection[] = [];
  try {
    await touchlineNats.start();
    processes.push(touchlineNats);
    const nodePort = freePort();
    const node = new ServerProcess("touchline", [BUN, "run", "src/main.ts"], {
      cpus: SERVER_CPUS,
      env: { PORT: String(nodePort), NATS_URL: touchlineNats.url, NODE_ID: `floor-${nodePort}`, LOG_LEVEL: "warn" },
    });
    processes.unshift(node);
    await node.waitUntil(() => httpAnswers(`http://127.0.0.1:${nodePort}/readyz`), READY_TIMEOUT_MS);
    const barePort = freePort();
    const bare = new ServerProcess("bare Bun", [BUN, "run", "bench/peers/bare-bun-server.ts"], {
      cpus: SERVER_CPUS,
      env: { PORT: String(barePort), HOST: "127.0.0.1" },
    });
    processes.unshift(bare);
    await bare.waitUntil(() => httpAnswers(`http://127.0.0.1:${barePort}/nowhere`, 404), READY_TIMEOUT_MS);
    await rawNats.start();
    processes.push(rawNats);
    const nc = await connect({ servers: rawNats.url });
    processes.unshift({ stop: () => nc.close() });
    await (await jetstreamManager(nc)).streams.add({
      name: RAW_STREAM,
      subjects: [`${RAW_STREAM}.>`],
      storage: StorageType.File,
      max_age: RAW_RETENTION_NS,
      duplicate_window: RAW_DUPLICATE_WINDOW_NS,
      allow_direct: true,
    });
    const js = jetstream(nc);
    connections.push(await KeepAliveConnection.open("127.0.0.1", nodePort), await KeepAliveConnection.open("127.0.0.1", barePort));
    const natsOf = (server: NatsServer) => (): number => cpuMicros([server.pid!]);
    const loads: Record<"touchline" | "bare" | "raw", Load> = {
      touchline: httpLoad(connections[0]!, (i) => `/matches/floor-${i % MATCHES}/events`, node.pid, { nats: natsOf(touchlineNats) }),
      bare: httpLoad(connections[1]!, (i) => `/pub/floor-${i % MATCHES}`, bare.pid),
      raw: {
        async send(i) {
          await js.publish(`${RAW_STREAM}.floor-${i % MATCHES}`, encodeTickPublish(i));
        },
        meter() {
          const me = threadCpuMicros(process.pid);
          return { nats: natsOf(rawNats)(), user: me.user, system: me.system };
        },
      },
    };
    let next = 0;
    for (const load of Object.values(loads)) next += await paced(load, WARM_MS, next);

    const rows: string[] = [];
    const nodeRatios: number[] = [];
    const natsRatios: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const spent = Object.fromEntries(Object.keys(loads).map((name) => [name, { events: 0 } as Record<string, number>]));
      for (let turn = 0; turn < TURNS; turn++) {
        for (const [name, load] of Object.entries(loads)) {
          const before = load.meter();
          const sent = await paced(load, TURN_MS, next);
          next += sent;
          const after = load.meter();
          const sum = spent[name]!;
          sum.events = (sum.events ?? 0) + sent;
          for (const key of Object.keys(after)) sum[key] = (sum[key] ?? 0) + after[key]! - before[key]!;
        }
      }
      const per = (name: string, key: string): number => spent[name]![key]! / spent[name]!.events!;
      const t = (key: string): number => per("touchline", key);
      const nodeRatio = t("total") / per("bare", "total");
      const natsRatio = t("nats") / per("raw", "nats");
      nodeRatios.push(nodeRatio);
      natsRatios.push(natsRatio);
      rows.push(
        `| ${round} | ${us(t("total"))} (${us(t("user"))} / ${us(t("system"))}, ${us(t("total") - t("user") - t("system"))}) | ${us(per("bare", "total"))} (${us(per("bare", "user"))} / ${us(per("bare", "system"))}) | ${nodeRatio.toFixed(2)}× | ${us(t("nats"))} | ${us(per("raw", "nats"))} | ${natsRatio.toFixed(2)}× | ${us(per("raw", "user"))} / ${us(per("raw", "system"))} |`,
      );
      console.log(rows.at(-1));
    }
    console.log(
      `\nCPU per isolated event, µs (${RATE}/s over ${MATCHES} matches, each load alone in turns of ${TURN_MS} ms, ${TURNS} turns a round; servers on CPU ${SERVER_CPUS}, this publisher on CPU ${PUBLISHER_CPUS}):\n`,
    );
    console.log(
      "| round | Touchline node (main thread user / system, other threads) | bare Bun (main user / system) | node ÷ bare | Touchline's nats-server | raw JetStream's nats-server | nats ÷ raw | raw publisher (user / system) |",
    );
    console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const row of rows) console.log(row);
    console.log(`\nnode ÷ bare Bun: median ${median(nodeRatios).toFixed(2)}×; nats-server ÷ raw JetStream: median ${median(natsRatios).toFixed(2)}×`);
  } finally {
    for (const c of connections) c.close();
    for (const p of processes) await p.stop();
  }
}

await main();
process.exit(0);
