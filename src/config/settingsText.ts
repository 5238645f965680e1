/**
 * The settings declared in settings.ts, written out for people: `bun run node --help`, and the table in
 * docs/operators.md, "Configuration" (`bun run src/config/settingsText.ts --readme` rewrites it; a test
 * fails when it drifts).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { SETTING_NAMES, SETTINGS, isSetting, shownDefault, type SettingSpec } from "./settings.ts";

const GROUP_NOTES: Partial<Record<SettingSpec["group"], string>> = {
  "Abuse limits": "a rate or count of 0 turns that limit off",
  "Logs and traces": "OpenTelemetry's standard variables, as the node reads them",
};

function typeAndUnit(spec: SettingSpec): string {
  return spec.unit && spec.type !== "duration" ? `${spec.type} (${spec.unit})` : spec.type;
}

/** `bun run node --help`: every setting with its type, default and meaning, grouped. */
export function helpText(): string {
  const lines = [
    "touchline: one node of a Touchline cluster (SSE fan-out over NATS JetStream)",
    "",
    "Usage: bun run node            start a node, configured by the environment variables below",
    "       bun run node --help     print this and exit (also -h)",
    "",
    "A bad value stops the node at start-up with one line `invalid NAME: ...` (exit code 2); a variable",
    "that looks like a setting but is not one is warned about. Durations: 500ms, 15s, 1m, 24h, 2d, or a",
    "bare number of milliseconds. Flags: true/false (also 1/0, yes/no, on/off).",
  ];
  let group: string | undefined;
  for (const name of SETTING_NAMES) {
    const spec: SettingSpec = SETTINGS[name];
    if (spec.group !== group) {
      group = spec.group;
      const note = GROUP_NOTES[spec.group];
      lines.push("", note ? `${group} (${note}):` : `${group}:`);
    }
    lines.push(`  ${name}  ${typeAndUnit(spec)}, default ${shownDefault(spec)}`, `      ${spec.meaning}`);
  }
  lines.push(
    "",
    "OpenTelemetry's libraries also read their own variables (OTEL_RESOURCE_ATTRIBUTES,",
    'OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION...). docs/operators.md, "Configuration", has this table.',
  );
  return `${lines.join("\n")}\n`;
}

/** Declared names in a meaning, in code font (the docs' other prose does the same). */
function codeNames(text: string): string {
  return text.replace(/\b[A-Z][A-Z0-9_]{2,}\b/g, (word) => (isSetting(word) ? `\`${word}\`` : word));
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

export const README_TABLE_BEGIN = "<!-- settings table: generated from src/config/settings.ts by `bun run src/config/settingsText.ts --readme` -->";
export const README_TABLE_END = "<!-- end of settings table -->";

/** The docs' table (docs/operators.md): one row per setting, name in code font first. */
export function readmeTable(): string {
  const rows = ["| Variable | Type | Default | Unit | Meaning |", "| --- | --- | --- | --- | --- |"];
  for (const name of SETTING_NAMES) {
    const spec: SettingSpec = SETTINGS[name];
    const shown = spec.shown !== undefined ? codeNames(spec.shown) : spec.default !== undefined ? `\`${spec.default}\`` : "unset";
    rows.push(`| \`${name}\` | ${spec.type} | ${cell(shown)} | ${cell(spec.unit ?? "")} | ${cell(codeNames(spec.meaning))} |`);
  }
  return rows.join("\n");
}

/** A page (docs/operators.md) with its settings table replaced by the one the declaration gives. */
export function withReadmeTable(readme: string): string {
  const begin = readme.indexOf(README_TABLE_BEGIN);
  const end = readme.indexOf(README_TABLE_END);
  if (begin < 0 || end < begin) throw new Error("docs/operators.md has no settings table markers");
  return `${readme.slice(0, begin + README_TABLE_BEGIN.length)}\n${readmeTable()}\n${readme.slice(end)}`;
}

if (import.meta.main) {
  if (process.argv.includes("--readme")) {
    // `--readme`: the flag's name is older than the table's move from README.md to docs/operators.md.
    const path = new URL("../../docs/operators.md", import.meta.url);
    writeFileSync(path, withReadmeTable(readFileSync(path, "utf8")));
  } else {
    process.stdout.write(`${readmeTable()}\n`);
  }
}
