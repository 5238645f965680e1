/**
 * One bench run: each peer in turn is started, put through every scenario with the same load
 * generator, and stopped. Scenarios reuse the fan-out streams (idle → steady → burst → storm),
 * then the many-channels scenario opens its own; the hold scenario restarts the peer first, so
 * its memory figure starts from a fresh process. The one-node Touchline peer also runs issue 12's
 * scenarios: publish throughput against raw JetStream (before hold), and many matches (last, on a
 * fresh restart of its own, for the same reason as hold).
 */
import type { BenchConfig, ScenarioGroup } from "./bench-config.ts";
import { GeneratorPool } from "./loadgen/generator-pool.ts";
import { type CoreSplit, describeMachine } from "./machine.ts";
import type { Peer } from "./peers/peer.ts";
import { PEERS } from "./peers/registry.ts";
import { TouchlinePeer } from "./peers/touchline-peer.ts";
import { SequenceBook } from "./publisher.ts";
import type { BenchResult, PeerResult } from "./results.ts";
import { runBurst } from "./scenarios/burst.ts";
import { runChannels } from "./scenarios/channels.ts";
import type { ScenarioContext } from "./scenarios/context.ts";
import { holdStreamsFor, runHold } from "./scenarios/hold.ts";
import { runIdle } from "./scenarios/idle.ts";
import { runLimit } from "./scenarios/limit.ts";
import { runManyMatches } from "./scenarios/matches.ts";
import { runPublish } from "./scenarios/publish.ts";
import { runSteady } from "./scenarios/steady.ts";
import { runStorm } from "./scenarios/storm.ts";

const FANOUT_CHANNEL = "fanout";
const WARMUP_CHANNEL = "warmup";
const MANY_CHANNEL_PREFIX = "m";
const HOLD_CHANNEL = "hold";
/** A few publishes before measuring, so first-use allocations are not counted as per-stream memory. */
const WARMUP_EVENTS = 3;
const CLOSE_TIMEOUT_MS = 2_000;

export interface BenchOptions {
  config: BenchConfig;
  /** Peer names, in order; unknown names are rejected. */
  peers: string[];
  cores: CoreSplit;
  /** Allow installing missing peers (nginx/nchan via apt-get). */
  install: boolean;
  log(line: string): void;
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const started = Date.now();
  const result: BenchResult = {
    startedAt: new Date(started).toISOString(),
    durationSeconds: 0,
    machine: describeMachine(),
    cores: options.cores,
    config: options.config,
    peers: [],
    skipped: [],
  };
  for (const name of options.peers) {
    const entry = PEERS.find((p) => p.name === name);
    if (entry === undefined) throw new Error(`unknown peer "${name}"; known: ${PEERS.map((p) => p.name).join(", ")}`);
    const reason = await entry.prepare({ install: options.install, log: options.log });
    if (reason !== null) {
      options.log(`skipping ${name}: ${reason}`);
      result.skipped.push({ name, reason });
      continue;
    }
    result.peers.push(await runPeer(entry.create(options.cores.server, options.config), options));
  }
  result.durationSeconds = (Date.now() - started) / 1000;
  return result;
}

async function runPeer(peer: Peer, options: BenchOptions): Promise<PeerResult> {
  const result: PeerResult = { name: peer.name, title: peer.title, resumes: peer.resumes };
  const pool = new GeneratorPool(options.cores.generator, options.config.streamsPerGenerator);
  const context: ScenarioContext = { peer, pool, book: new SequenceBook(), config: options.config, log: options.log };
  options.log(`${peer.title}:`);
  const started = performance.now();
  const wants = (group: ScenarioGroup): boolean => options.config.scenarios.includes(group);
  // Issue 12's scenarios are about one node: its publish path and what each owned match costs it.
  const oneTouchlineNode = peer instanceof TouchlinePeer && peer.nodes === 1 ? peer : null;
  try {
    await peer.start();
    options.log(`  started (pids ${peer.pids().join(", ")})`);
    await warmUp(context);
    if (wants("fanout")) {
      result.idle = await runIdle(context, FANOUT_CHANNEL);
      result.steady = await runSteady(context, FANOUT_CHANNEL);
      result.burst = await runBurst(context, FANOUT_CHANNEL);
      result.storm = await runStorm(context, FANOUT_CHANNEL);
      await pool.close(CLOSE_TIMEOUT_MS);
    }
    if (wants("channels")) result.channels = await runChannels(context, MANY_CHANNEL_PREFIX);
    if (oneTouchlineNode !== null && wants("publish")) {
      await pool.close(CLOSE_TIMEOUT_MS);
      result.publish = await runPublish(context, oneTouchlineNode);
    }
    if (wants("hold") && holdStreamsFor(context) > 0) {
      await restart(context);
      result.hold = await runHold(context, HOLD_CHANNEL);
      if (peer.streamCap !== null && peer.nodes === 1) result.limit = await runLimit(context, HOLD_CHANNEL, result.hold.streams);
    }
    if (oneTouchlineNode !== null && wants("matches") && options.config.manyMatches > 0) {
      await restart(context);
      result.matches = await runManyMatches(context, oneTouchlineNode);
    }
  } catch (error) {
    result.error = error instanceof Error ? error.message.split("\n")[0] : String(error);
    options.log(`  FAILED: ${result.error}`);
  } finally {
    await pool.close(CLOSE_TIMEOUT_MS);
    await peer.stop();
    options.log(`  done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return result;
}

/** Closes every stream and starts the peer afresh, so memory figures start from a new process. */
async function restart(context: ScenarioContext): Promise<void> {
  await context.pool.close(CLOSE_TIMEOUT_MS);
  await context.peer.stop();
  context.book = new SequenceBook();
  await context.peer.start();
  await warmUp(context);
}

async function warmUp(context: ScenarioContext): Promise<void> {
  for (let i = 0; i < WARMUP_EVENTS; i++) await context.book.publishNext(context.peer, WARMUP_CHANNEL);
}
