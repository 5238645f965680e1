/** Saves a run as bench/results/<date>.md and .svg, and as latest.md / latest.svg. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchResult } from "../results.ts";
import { renderMarkdown } from "./markdown.ts";
import { renderSvg } from "./svg-chart.ts";

export const RESULTS_DIR = new URL("../results/", import.meta.url).pathname;

export function writeResults(result: BenchResult, options: { dir: string; command: string }): { markdown: string; file: string } {
  mkdirSync(options.dir, { recursive: true });
  // 2026-11-23T13:40:12.345Z → 2026-11-23_1340 (one file per run, sortable by name)
  const stamp = result.startedAt.slice(0, 16).replace("T", "_").replace(":", "") + (result.config.quick ? "-quick" : "");
  const svg = renderSvg(result);
  writeFileSync(join(options.dir, `${stamp}.svg`), svg);
  writeFileSync(join(options.dir, "latest.svg"), svg);
  const dated = renderMarkdown(result, { command: options.command, chartFile: `${stamp}.svg` });
  writeFileSync(join(options.dir, `${stamp}.md`), dated);
  writeFileSync(join(options.dir, "latest.md"), renderMarkdown(result, { command: options.command, chartFile: "latest.svg" }));
  writeFileSync(join(options.dir, `${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
  return { markdown: dated, file: join(options.dir, `${stamp}.md`) };
}
