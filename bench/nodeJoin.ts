/**
 * What a node joining costs the node that owned everything: one node owns MATCHES active matches (one
 * event each, in `POST /events` batches), then a second node joins and takes about half the shards.
 * Node 1's own event-loop lag gauge and its /readyz answer time are probed all through, over a quiet
 * window first (the baseline, same run) and then from the join until both nodes' owned matches add up
 * to MATCHES again. Each round starts its own NATS and nodes.
 *
 *   node_modules/.bin/bun bench/nodeJoin.ts [--matches=20000] [--rounds=2]
 */
import { startNats, startNode, type NodeFixture } from "../test/helpers/cluster.ts";
import { postInBatchesTo } from "./batchPosts.ts";
import { numberArg } from "./scriptArgs.ts";
import { encodeTickPublish } from "./tick.ts";

const MATCHES = numberArg("matches", 20_000);
const ROUNDS = numberArg("rounds", 2);
const BATCH_ITEMS = 500;
const BATCHES_IN_FLIGHT = 4;
const BATCH_TIMEOUT_MS = 30_000;
const READYZ_EVERY_MS = 20;
/** The node's lag gauge holds the worst of its probes over this window (EVENT_LOOP_LAG_WINDOW_MS). */
const LAG_WINDOW_MS = 1000;
const LAG_EVERY_MS = 200;
const QUIET_WINDOW_MS = 2000;
const SETTLE_MS = 3000;
const OWNED_POLL_MS = 250;
const MOVE_TIMEOUT_MS = 60_000;
/** Actors must not idle out during the round (ACTOR_IDLE, 30 s by default). */
const NODE_ENV = { EVENT_LOOP_LAG_WINDOW_MS: String(LAG_WINDOW_MS), ACTOR_IDLE: "600s" };
const OWNED = /^touchline_owned_matches (\S+)$/m;
const LAG = /^touchline_event_loop_lag_seconds (\S+)$/m;

async function metric(node: NodeFixture, pattern: RegExp): Promise<number> {
  return Number(pattern.exec(await (await fetch(`${node.url}/metrics`)).text())?.[1] ?? 0);
}

async function createMatches(node: NodeFixture): Promise<void> {
  const matches = Array.from({ length: MATCHES }, (_, i) => `join-${i}`);
  await postInBatchesTo(node.port, BATCHES_IN_FLIGHT, matches, {
    batchItems: BATCH_ITEMS,
    timeoutMs: BATCH_TIMEOUT_MS,
    batch: (chunk) => ({ body: `[${chunk.map((m) => encodeTickPublish(1, m)).join(",")}]` }),
  });
  while ((await metric(node, OWNED)) < MATCHES) await Bun.sleep(OWNED_POLL_MS);
}

/** Probes node 1 until `until` settles: the worst /readyz time and lag gauge seen meanwhile. */
async function probe<T>(node: NodeFixture, until: Promise<T>): Promise<{ result: T; readyzMaxMs: number; lagMaxMs: number }> {
  let done = false;
  let readyzMaxMs = 0;
  let lagMaxMs = 0;
  const readyz = (async () => {
    while (!done) {
      const started = performance.now();
      await (await fetch(`${node.url}/readyz`)).arrayBuffer();
      readyzMaxMs = Math.max(readyzMaxMs, performance.now() - started);
      await Bun.sleep(READYZ_EVERY_MS);
    }
  })();
  const lag = (async () => {
    while (!done) {
      lagMaxMs = Math.max(lagMaxMs, (await metric(node, LAG)) * 1000);
      await Bun.sleep(LAG_EVERY_MS);
    }
  })();
  try {
    const result = await until;
    // The gauge reports a stall within its window: one more reading after the end.
    await Bun.sleep(LAG_WINDOW_MS);
    return { result, readyzMaxMs, lagMaxMs };
  } finally {
    done = true;
    await Promise.all([readyz, lag]);
  }
}

interface Round {
  quiet: { readyzMaxMs: number; lagMaxMs: number };
  join: { readyzMaxMs: number; lagMaxMs: number };
  joinSeconds: number;
  ownedAfter: [number, number];
}

async function round(): Promise<Round> {
  const nats = await startNats();
  const nodes: NodeFixture[] = [];
  try {
    const first = await startNode({ natsUrl: nats.url, env: NODE_ENV });
    nodes.push(first);
    await createMatches(first);
    await Bun.sleep(SETTLE_MS);
    const quiet = await probe(first, Bun.sleep(QUIET_WINDOW_MS));
    const started = performance.now();
    const join = await probe(
      first,
      (async () => {
        const second = await startNode({ natsUrl: nats.url, env: NODE_ENV });
        nodes.push(second);
        const deadline = performance.now() + MOVE_TIMEOUT_MS;
        for (;;) {
          const owned: [number, number] = [await metric(first, OWNED), await metric(second, OWNED)];
          if (owned[1] > 0 && owned[0] + owned[1] === MATCHES) return owned;
          if (performance.now() > deadline) throw new Error(`ownership did not settle: ${owned.join(" + ")} of ${MATCHES}`);
          await Bun.sleep(OWNED_POLL_MS);
        }
      })(),
    );
    return { quiet, join, joinSeconds: (performance.now() - started) / 1000, ownedAfter: join.result };
  } finally {
    for (const n of nodes) await n.kill();
    await nats.stop();
  }
}

console.log(`node join: ${MATCHES} active matches on node 1, a second node joins; ${ROUNDS} round(s)`);
for (let r = 1; r <= ROUNDS; r++) {
  const f = await round();
  console.log(
    `  round ${r}: node 1 worst /readyz ${f.quiet.readyzMaxMs.toFixed(0)} ms quiet, ${f.join.readyzMaxMs.toFixed(0)} ms through the join ` +
      `(${(f.join.readyzMaxMs / f.quiet.readyzMaxMs).toFixed(1)}x); lag gauge max ${f.quiet.lagMaxMs.toFixed(0)} ms quiet, ${f.join.lagMaxMs.toFixed(0)} ms through the join; ` +
      `owned after ${f.ownedAfter.join(" + ")} in ${f.joinSeconds.toFixed(1)} s`,
  );
}
