/**
 * The settings table (docs/operators.md, "Configuration") and the declaration (src/config/settings.ts) cannot drift: the table is
 * parsed row by row and compared with the declaration, and must be exactly what the generator writes
 * (`bun run src/config/settingsText.ts --readme` rewrites it).
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { SETTINGS, SETTING_NAMES, shownDefault, type SettingName, type SettingSpec } from "../../src/config/settings.ts";
import { README_TABLE_BEGIN, README_TABLE_END, readmeTable, withReadmeTable } from "../../src/config/settingsText.ts";

/** The page holding the table (it moved there from README.md; the name README stays for the page read). */
const README = readFileSync(new URL("../../docs/operators.md", import.meta.url), "utf8");

interface Row {
  name: string;
  type: string;
  default: string;
  unit: string;
  meaning: string;
}

/** The table's rows: `| `NAME` | type | default | unit | meaning |`, cells unescaped, code font removed. */
function tableRows(readme: string): Row[] {
  const section = readme.slice(readme.indexOf("\n## Configuration\n"), readme.indexOf("\n## ", readme.indexOf("\n## Configuration\n") + 5));
  const begin = section.indexOf(README_TABLE_BEGIN);
  const end = section.indexOf(README_TABLE_END);
  expect(begin).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(begin);
  const lines = section
    .slice(begin + README_TABLE_BEGIN.length, end)
    .trim()
    .split("\n");
  expect(lines[0]).toBe("| Variable | Type | Default | Unit | Meaning |");
  return lines.slice(2).map((line) => {
    expect(line).toMatch(/^\| `[A-Z][A-Z0-9_]*` \| /);
    const cells = line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, "|"));
    expect(cells).toHaveLength(5);
    const plain = (c: string) => c.replace(/`/g, "");
    return { name: plain(cells[0]!), type: cells[1]!, default: plain(cells[2]!), unit: cells[3]!, meaning: plain(cells[4]!) };
  });
}

test("one row per declared setting, in the declaration's order, name in code font first", () => {
  const rows = tableRows(README);
  expect(rows.map((r) => r.name)).toEqual(SETTING_NAMES);
  expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
});

test("each row's type, default, unit and meaning are the declaration's", () => {
  for (const row of tableRows(README)) {
    const spec: SettingSpec = SETTINGS[row.name as SettingName];
    expect({ name: row.name, type: row.type, default: row.default, unit: row.unit, meaning: row.meaning }).toEqual({
      name: row.name,
      type: spec.type,
      default: shownDefault(spec),
      unit: spec.unit ?? "",
      meaning: spec.meaning,
    });
  }
});

test("the table is exactly what the generator writes (run `bun run src/config/settingsText.ts --readme` after editing settings.ts)", () => {
  expect(withReadmeTable(README)).toBe(README);
  expect(README).toContain(`${README_TABLE_BEGIN}\n${readmeTable()}\n${README_TABLE_END}`);
});

test("the Configuration section names no variable that is not a setting", () => {
  const start = README.indexOf("\n## Configuration\n");
  const section = README.slice(start, README.indexOf("\n## ", start + 5));
  const named = new Set([...section.matchAll(/`([A-Z][A-Z0-9]*_[A-Z0-9_]+)(=[^`]*)?`/g)].map((m) => m[1]!));
  const foreign = [...named].filter((n) => !(n in SETTINGS));
  // OpenTelemetry's own (read by its libraries) and the tools' variables are named as such.
  expect(foreign.sort()).toEqual(["MAX_CONECTIONS", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_RESOURCE_ATTRIBUTES", "TOUCHLINE_TOKEN", "TOUCHLINE_URL"]);
});
