/**
 * The source tree's layers hold: no import cycle between folders of src/ (http uses actors, actors use
 * bus, nothing imports http), and none between files. Imports are read from the source text (every
 * relative `from "..."`, type-only ones included: a cycle of types is still two concepts that cannot be
 * understood apart).
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const SRC = join(import.meta.dir, "..", "..", "src");
const IMPORT = /from\s+["'](\.{1,2}\/[^"']+)["']/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") && !path.endsWith(".test.ts") ? [path] : [];
  });
}

/** Resolves `./x` or `./x.ts` to a file of the tree. */
function resolveImport(from: string, spec: string): string | undefined {
  if (spec.endsWith(".json")) return undefined;
  const base = normalize(join(dirname(from), spec));
  return base.endsWith(".ts") ? base : `${base}.ts`;
}

function folderOf(file: string): string {
  const rel = relative(SRC, file).split("/");
  return rel.length > 1 ? rel[0]! : ".";
}

/** Strongly connected components with more than one member (Tarjan): each is a cycle. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    indexOf.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
      }
    }
    if (low.get(v) === indexOf.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!indexOf.has(v)) visit(v);
  return out;
}

const files = sourceFiles(SRC);
const fileGraph = new Map<string, Set<string>>();
const folderGraph = new Map<string, Set<string>>();
for (const file of files) {
  const text = readFileSync(file, "utf8");
  const deps = new Set<string>();
  for (const m of text.matchAll(IMPORT)) {
    const target = resolveImport(file, m[1]!);
    if (target) deps.add(target);
  }
  fileGraph.set(relative(SRC, file), new Set([...deps].map((d) => relative(SRC, d))));
  const from = folderOf(file);
  const folders = folderGraph.get(from) ?? new Set<string>();
  for (const d of deps) if (folderOf(d) !== from) folders.add(folderOf(d));
  folderGraph.set(from, folders);
}

test("no import cycle between the folders of src/", () => {
  expect(cycles(folderGraph)).toEqual([]);
});

test("no import cycle between the files of src/", () => {
  expect(cycles(fileGraph)).toEqual([]);
});

test("nothing imports the HTTP layer but the entry point", () => {
  const importers = [...fileGraph].filter(([file, deps]) => !file.startsWith("http/") && file !== "main.ts" && [...deps].some((d) => d.startsWith("http/")));
  expect(importers.map(([file]) => file)).toEqual([]);
});
