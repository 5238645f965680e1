/**
 * `bun run bench [--quick] [--streams=N] [--hold=N] [--cluster-hold=N] [--matches=N] [--peers=nchan,node,bun,touchline,touchline3]
 *   [--scenarios=fanout,channels,publish,hold,matches] [--no-install] [--no-save] [--out=DIR]`
 *
 * Starts every peer itself, runs all scenarios against each with the same load generator, prints
 * the table and saves it under bench/results/. Everything stops by itself; loopback only.
 */
import { parseArgs } from "node:util";
import { runBench } from "./bench.ts";
import { SCENARIO_GROUPS, type ScenarioGroup, benchConfig } from "./bench-config.ts";
import { splitCores } from "./machine.ts";
import { PEERS } from "./peers/registry.ts";
import { RESULTS_DIR, writeResults } from "./report/write-results.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    quick: { type: "boolean", default: false },
    streams: { type: "string" },
    hold: { type: "string" },
    "cluster-hold": { type: "string" },
    peers: { type: "string" },
    scenarios: { type: "string" },
    matches: { type: "string" },
    "no-install": { type: "boolean", default: false },
    "no-save": { type: "boolean", default: false },
    out: { type: "string" },
  },
  strict: true,
});

function count(flag: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${flag} must be an integer ≥ ${min}, got ${raw}`);
  return value;
}
const streams = count("streams", values.streams, 1);
const holdStreams = count("hold", values.hold, 0);
const clusterHoldStreams = count("cluster-hold", values["cluster-hold"], 0);
const manyMatches = count("matches", values.matches, 0);
const scenarios = values.scenarios?.split(",").map((s) => s.trim()) as ScenarioGroup[] | undefined;
for (const name of scenarios ?? []) {
  if (!SCENARIO_GROUPS.includes(name)) throw new Error(`unknown scenario group "${name}"; known: ${SCENARIO_GROUPS.join(", ")}`);
}
const config = benchConfig({
  quick: values.quick,
  ...(scenarios === undefined ? {} : { scenarios }),
  ...(manyMatches === undefined ? {} : { manyMatches }),
  ...(streams === undefined ? {} : { streams }),
  ...(holdStreams === undefined ? {} : { holdStreams }),
  ...(clusterHoldStreams === undefined ? {} : { clusterHoldStreams }),
});
const peers = values.peers?.split(",").map((p) => p.trim()) ?? PEERS.map((p) => p.name);
const tasksetPresent = Bun.which("taskset") !== null;
const cores = splitCores(navigator.hardwareConcurrency, tasksetPresent);

// The orchestrator publishes; it shares the generator's cores, never the server's.
if (cores.generator !== "-") Bun.spawnSync(["taskset", "-cp", cores.generator, String(process.pid)], { stdout: "ignore" });
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));
// Every step has its own bound; this one catches whatever slips through (peers die with the bench).
const WATCHDOG_MS = (config.quick ? 5 : 45) * 60_000;
setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 60_000} min, giving up`);
  process.exit(2);
}, WATCHDOG_MS).unref();

const log = (line: string): void => console.log(line);
log(
  `bench: ${config.quick ? "quick" : "full"} run, ${config.streams} streams, peers ${peers.join(", ")}, scenarios ${config.scenarios.join(", ")}; ` +
    `server CPU ${cores.server}, generator CPU ${cores.generator}`,
);
const result = await runBench({ config, peers, cores, install: !values["no-install"], log });
if (values["no-save"]) {
  const { renderMarkdown } = await import("./report/markdown.ts");
  log(`\n${renderMarkdown(result, { command: `bun run bench ${Bun.argv.slice(2).join(" ")}`.trim(), chartFile: null })}`);
} else {
  const saved = writeResults(result, { dir: values.out ?? RESULTS_DIR, command: `bun run bench ${Bun.argv.slice(2).join(" ")}`.trim() });
  log(`\n${saved.markdown}`);
  log(`saved ${saved.file}`);
}
process.exit(result.peers.some((p) => p.error !== undefined) ? 1 : 0);
