/**
 * A node's resident memory after one event to each of many new matches, read every half second for a
 * while: what the matches scenario's "RSS per idle match" reading is taken from, as a curve.
 *
 * It shows when the runtime gives back the burst's memory: the node's RSS stays at what the burst left
 * (garbage of the requests, acks and tail messages) and falls in one step some seconds later, when Bun's
 * collector runs and its allocator returns the pages; the index writes (2,000 entries a second) end long
 * before for 10,000 matches and about when it happens for 20,000, so the step is the runtime's timing,
 * not the node's work. What an idle match holds is what is left after that step.
 *
 *   node_modules/.bin/bun bench/rssAfterBurst.ts [--matches=20000] [--seconds=30] [--batch=500]
 */
import { postInBatchesTo } from "./batchPosts.ts";
import { NatsServer } from "./peers/nats-server.ts";
import { BUN, ServerProcess, freePort, httpAnswers } from "./peers/server-process.ts";
import { residentBytes } from "./proc-stats.ts";
import { numberArg } from "./scriptArgs.ts";
import { encodeTickPublish } from "./tick.ts";

const MATCHES = numberArg("matches", 20_000);
const SECONDS = numberArg("seconds", 30);
const BATCH_ITEMS = numberArg("batch", 500);
/** As the matches scenario publishes them. */
const BATCHES_IN_FLIGHT = 4;
/** The node and its nats-server share a core, as in `bun run bench`. */
const SERVER_CPUS = "0";
const READY_TIMEOUT_MS = 30_000;
/** The node's RSS is read this long after it answers /readyz, before the burst. */
const SETTLE_MS = 3_000;
const READ_EVERY_MS = 500;
const REQUEST_TIMEOUT_MS = 30_000;
const KIB = 1024;

const nats = new NatsServer(SERVER_CPUS);
let node: ServerProcess | undefined;
try {
  await nats.start();
  const port = freePort();
  node = new ServerProcess("touchline", [BUN, "run", "src/main.ts"], {
    cpus: SERVER_CPUS,
    env: { PORT: String(port), NATS_URL: nats.url, NODE_ID: `rss-${port}`, MAX_CONNECTIONS: "20000" },
  });
  await node.waitUntil(() => httpAnswers(`http://127.0.0.1:${port}/readyz`), READY_TIMEOUT_MS);
  await Bun.sleep(SETTLE_MS);
  const pids = [node.pid];
  const before = residentBytes(pids);

  const started = performance.now();
  const matches = Array.from({ length: MATCHES }, (_, i) => `burst${i}`);
  await postInBatchesTo(port, BATCHES_IN_FLIGHT, matches, {
    batchItems: BATCH_ITEMS,
    timeoutMs: REQUEST_TIMEOUT_MS,
    batch: (chunk) => ({ body: `[${chunk.map((match) => encodeTickPublish(1, match)).join(",")}]` }),
  });
  const stored = performance.now();
  console.log(
    `${MATCHES} matches, one event each, stored in ${((stored - started) / 1000).toFixed(1)} s; node RSS before ${(before / KIB / KIB).toFixed(1)} MiB`,
  );
  console.log("seconds after the last event: KiB of RSS growth per match");
  const line: string[] = [];
  while (performance.now() - stored < SECONDS * 1000) {
    await Bun.sleep(READ_EVERY_MS);
    const perMatch = (residentBytes(pids) - before) / MATCHES / KIB;
    line.push(`${((performance.now() - stored) / 1000).toFixed(1)}: ${perMatch.toFixed(2)}`);
    if (line.length === 10) console.log(line.splice(0).join("  "));
  }
  if (line.length > 0) console.log(line.join("  "));
} finally {
  await node?.stop();
  await nats.stop();
}
