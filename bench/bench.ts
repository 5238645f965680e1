/**
 * One bench run: each peer in turn is started, put through every scenario with the same load
 * generator, and stopped. Scenarios reuse the fan-out streams (idle → steady → burst → storm),
 * then the many-channels scenario opens its own; the hold scenario restarts the peer first, so
 * its memory figure starts from a fresh process. The one-node Touchline peer also runs issue 12's
 * scenarios: publish throughput against raw JetStream (before hold), and many matches (last, on a
 * fresh restart of its own, for the same reason as hold). Many channels' goal is Touchline's CPU per
 * delivery against nchan's, so when both run, nchan's many channels is measured in Touchline's turn, the
 * two peers alternating round by round (alternatingChannels.ts).
 */
import type { BenchConfig, ScenarioGroup } from "./bench-config.ts";
import { GeneratorPool } from "./loadgen/generator-pool.ts";
import { type CoreSplit, describeMachine } from "./machine.ts";
import type { Peer } from "./peers/peer.ts";
import { PEERS, type PeerEntry } from "./peers/registry.ts";
import { TouchlinePeer } from "./peers/touchline-peer.ts";
import { SequenceBook } from "./publisher.ts";
import type { BenchResult, ChannelsFigures, PeerResult } from "./results.ts";
import { runAlternatingChannels } from "./scenarios/alternatingChannels.ts";
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
/** Many channels: the peer measured in alternating rounds against CHANNELS_BASELINE, when both run. */
const CHANNELS_ALTERNATES = "touchline";
const CHANNELS_BASELINE = "nchan";

/**
 * How a peer runs many channels: on its own; in its turn, alternating with a baseline peer started for
 * it (whose figures go to `deliver`); or not at all, being that baseline (measured in the other's turn).
 */
type ChannelsPlan = { kind: "alone" } | { kind: "alternating"; baseline: PeerEntry; deliver(figures: ChannelsFigures): void } | { kind: "baseline" };

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
  const ready: PeerEntry[] = [];
  for (const name of options.peers) {
    const entry = PEERS.find((p) => p.name === name);
    if (entry === undefined) throw new Error(`unknown peer "${name}"; known: ${PEERS.map((p) => p.name).join(", ")}`);
    const reason = await entry.prepare({ install: options.install, log: options.log });
    if (reason !== null) {
      options.log(`skipping ${name}: ${reason}`);
      result.skipped.push({ name, reason });
      continue;
    }
    ready.push(entry);
  }
  const baseline = ready.find((e) => e.name === CHANNELS_BASELINE);
  const alternate = options.config.scenarios.includes("channels") && baseline !== undefined && ready.some((e) => e.name === CHANNELS_ALTERNATES);
  let baselineChannels: ChannelsFigures | undefined;
  for (const entry of ready) {
    const plan: ChannelsPlan = !alternate
      ? { kind: "alone" }
      : entry === baseline
        ? { kind: "baseline" }
        : entry.name === CHANNELS_ALTERNATES
          ? { kind: "alternating", baseline, deliver: (figures) => (baselineChannels = figures) }
          : { kind: "alone" };
    result.peers.push(await runPeer(entry.create(options.cores.server, options.config), options, plan));
  }
  const baselineResult = result.peers.find((p) => p.name === CHANNELS_BASELINE);
  if (baselineResult !== undefined && baselineChannels !== undefined) baselineResult.channels = baselineChannels;
  result.durationSeconds = (Date.now() - started) / 1000;
  return result;
}

async function runPeer(peer: Peer, options: BenchOptions, channels: ChannelsPlan): Promise<PeerResult> {
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
    if (wants("channels")) {
      if (channels.kind === "alone") result.channels = await runChannels(context, MANY_CHANNEL_PREFIX);
      else if (channels.kind === "alternating") result.channels = await alternateChannels(context, channels.baseline, options, channels.deliver);
      else options.log(`  channels: measured in ${CHANNELS_ALTERNATES}'s turn, the two alternating`);
    }
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

/** Starts `baseline` beside the peer of `context` and measures many channels on both, in alternating rounds. */
async function alternateChannels(
  context: ScenarioContext,
  baseline: PeerEntry,
  options: BenchOptions,
  deliver: (figures: ChannelsFigures) => void,
): Promise<ChannelsFigures> {
  const peer = baseline.create(options.cores.server, options.config);
  const pool = new GeneratorPool(options.cores.generator, options.config.streamsPerGenerator);
  const other: ScenarioContext = { peer, pool, book: new SequenceBook(), config: options.config, log: options.log };
  try {
    await peer.start();
    options.log(`  ${peer.name} started beside it for many channels (pids ${peer.pids().join(", ")})`);
    const figures = await runAlternatingChannels(context, other, MANY_CHANNEL_PREFIX);
    deliver(figures.baseline);
    return figures.measured;
  } finally {
    await pool.close(CLOSE_TIMEOUT_MS);
    await peer.stop();
  }
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
