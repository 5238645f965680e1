/**
 * Many channels, this tree's node against a base version's, in alternating rounds: the scenario whose
 * goal is the hardest to read (server CPU per delivery ≤ 2× nchan), as an A/B of a change. Both builds
 * run at once, each with its own nats-server, all pinned to the server core, each holding the
 * scenario's streams (500 channels × 20), warmed alike, then measured in turns (alternatingChannels.ts):
 * a slow spell of this shared machine falls on both.
 *
 *   node_modules/.bin/bun bench/channelsAB.ts [--base=HEAD] [--rounds=4] [--seconds=20] [--this-env=NAME=value ...]
 *
 * `--seconds` is each build's measured time in all, split over the rounds. Prints each build's figures
 * and this tree's server CPU per delivery ÷ the base's, round by round and over all rounds.
 */
import { benchConfig } from "./bench-config.ts";
import { checkOutBase, thisEnvArgs, thisTreeLabel } from "./baseWorktree.ts";
import { GeneratorPool } from "./loadgen/generator-pool.ts";
import { splitCores } from "./machine.ts";
import { TouchlinePeer } from "./peers/touchline-peer.ts";
import { REPO_ROOT } from "./peers/server-process.ts";
import { SequenceBook } from "./publisher.ts";
import { runAlternatingChannels } from "./scenarios/alternatingChannels.ts";
import type { ScenarioContext } from "./scenarios/context.ts";
import { numberArg } from "./scriptArgs.ts";

const BASE = process.argv.find((a) => a.startsWith("--base="))?.slice("--base=".length) ?? "HEAD";
const CLOSE_TIMEOUT_MS = 2_000;
const CHANNEL_PREFIX = "m";

async function main(): Promise<void> {
  const config = { ...benchConfig({ quick: false }), channelsRounds: numberArg("rounds", 4), channelsSeconds: numberArg("seconds", 20) };
  const cores = splitCores(navigator.hardwareConcurrency, Bun.which("taskset") !== null);
  Bun.spawnSync(["taskset", "-cp", cores.generator, String(process.pid)], { stdout: "ignore", stderr: "ignore" });
  const thisEnv = thisEnvArgs();
  const base = await checkOutBase(BASE);
  const log = (line: string): void => console.log(line);
  const contexts: ScenarioContext[] = [
    new TouchlinePeer(cores.server, 1, config.touchlineStreamCap, { name: "this", title: thisTreeLabel(thisEnv), root: REPO_ROOT, env: thisEnv }),
    new TouchlinePeer(cores.server, 1, config.touchlineStreamCap, { name: "base", title: `base ${base.commit}`, root: base.dir }),
  ].map((peer) => ({ peer, pool: new GeneratorPool(cores.generator, config.streamsPerGenerator), book: new SequenceBook(), config, log }));
  try {
    for (const { peer } of contexts) await peer.start();
    log(
      `many channels, ${contexts[0]!.peer.title} against base ${base.commit}, ${config.channelsRounds} rounds of ${config.channelsSeconds / config.channelsRounds} s each:`,
    );
    const { measured, baseline } = await runAlternatingChannels(contexts[0]!, contexts[1]!, CHANNEL_PREFIX);
    const ratio = measured.serverCpuUsPerDelivery / baseline.serverCpuUsPerDelivery;
    log(
      `this tree ÷ base: ${ratio.toFixed(2)}× (${measured.serverCpuUsPerDelivery.toFixed(2)} / ${baseline.serverCpuUsPerDelivery.toFixed(2)} µs per delivery)`,
    );
  } finally {
    for (const { peer, pool } of contexts) {
      await pool.close(CLOSE_TIMEOUT_MS);
      await peer.stop();
    }
    await base.remove();
  }
}

await main();
process.exit(0);
