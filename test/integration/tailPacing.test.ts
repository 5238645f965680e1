/**
 * A burst off JetStream goes over several turns of the event loop (bus/orderedReader.ts with the node's
 * TurnPacer): with a real nats-server, 3,000 stored messages read by an ordered reader whose handler
 * costs a little per message, a 1 ms timer keeps firing while the burst is handled, and every message
 * still arrives once, in order. The same burst read unpaced holds the loop for the whole of a socket
 * read's messages: the control shows the measurement can tell the two apart.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { readOrdered } from "../../src/bus/orderedReader.ts";
import { PACED_TURN_BUDGET_MS, TurnPacer } from "../../src/loop/turnPacer.ts";
import { type NatsFixture, startNats } from "../helpers/cluster.ts";

const STREAM = "PACING";
const MESSAGES = 3000;
/** What handling one message costs in the test: a busy wait (a node's apply and fan-out). */
const WORK_PER_MESSAGE_MS = 0.1;
const TIMER_MS = 1;
/** Paced, a turn spends its budget plus a socket read's parsing, then the timer gets its turn (measured 15-22 ms). */
const PACED_GAP_BOUND_MS = 50;
/** Unpaced, a pull's thousand messages arrive in one read and run in one turn (measured 96-99 ms). */
const UNPACED_GAP_FLOOR_MS = 75;

let nats: NatsFixture;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["pacing.>"] });
  const js = jetstream(nc);
  const acks = Array.from({ length: MESSAGES }, (_, i) => js.publish(`pacing.m${i % 50}`, JSON.stringify({ i })));
  await Promise.all(acks);
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Spends the message's share of CPU.
  }
}

/** Reads the stream from its start; answers the seqs in the order handed on and the timer's worst gap meanwhile. */
async function readBurst(pace: (() => Promise<void> | undefined) | undefined): Promise<{ seqs: number[]; worstGapMs: number }> {
  const seqs: number[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  let worstGapMs = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worstGapMs = Math.max(worstGapMs, now - last);
    last = now;
  }, TIMER_MS);
  const reader = await readOrdered(
    { js: jetstream(nc), onProblem: () => {} },
    { stream: STREAM, filter: "pacing.>", start: { after: 0 }, batch: 1000, ...(pace ? { pace } : {}) },
    (m) => {
      busy(WORK_PER_MESSAGE_MS);
      seqs.push(m.seq);
      if (seqs.length === MESSAGES) done();
    },
  );
  try {
    await finished;
  } finally {
    clearInterval(timer);
    reader.stop();
  }
  return { seqs, worstGapMs };
}

test(`a burst of ${MESSAGES} messages is handled a turn's budget at a time: timers run in between, order kept`, async () => {
  const pacer = new TurnPacer({ budgetMs: PACED_TURN_BUDGET_MS });
  const paced = await readBurst(() => pacer.turn());
  const unpaced = await readBurst(undefined);
  console.log(
    `tail pacing: ${MESSAGES} messages at ${WORK_PER_MESSAGE_MS} ms each; worst ${TIMER_MS} ms-timer gap paced ${paced.worstGapMs.toFixed(1)} ms, unpaced ${unpaced.worstGapMs.toFixed(1)} ms`,
  );
  const inOrder = Array.from({ length: MESSAGES }, (_, i) => i + 1);
  expect(paced.seqs).toEqual(inOrder);
  expect(unpaced.seqs).toEqual(inOrder);
  expect(paced.worstGapMs).toBeLessThan(PACED_GAP_BOUND_MS);
  // The control: unpaced, one socket read's messages run in one turn.
  expect(unpaced.worstGapMs).toBeGreaterThan(UNPACED_GAP_FLOOR_MS);
});
