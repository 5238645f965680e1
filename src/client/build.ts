/**
 * `bun run build`: the typed client as a package. Emits into dist/ (git-ignored):
 *   dist/client/index.js   one ESM file (the client plus the SSE parser and merge patch it imports),
 *                          no dependencies, for Node ≥ 18, browsers, Bun and bundlers;
 *   dist/**\/*.d.ts         declarations from tsc (src/client/tsconfig.build.json), relative imports as .js.
 * package.json `exports["./client"]` points at both. Prints the bundle's size, minified and gzipped.
 */
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";

const ROOT = join(import.meta.dir, "..", "..");
const ENTRY = join(ROOT, "src/client/index.ts");
export const DIST = join(ROOT, "dist");
export const CLIENT_JS = join(DIST, "client/index.js");
export const CLIENT_TYPES = join(DIST, "client/index.d.ts");

export interface BundleSize {
  bytes: number;
  minifiedBytes: number;
  gzippedBytes: number;
}

async function bundle(minify: boolean): Promise<string> {
  const result = await Bun.build({ entrypoints: [ENTRY], format: "esm", target: "browser", minify, packages: "bundle" });
  if (!result.success || result.outputs.length !== 1) throw new AggregateError(result.logs, "bun build failed");
  return await result.outputs[0]!.text();
}

/** The client bundle's size as shipped, minified (as a consumer's bundler would) and gzipped. */
export async function measureClient(): Promise<BundleSize> {
  const [plain, minified] = await Promise.all([bundle(false), bundle(true)]);
  return {
    bytes: Buffer.byteLength(plain),
    minifiedBytes: Buffer.byteLength(minified),
    gzippedBytes: gzipSync(minified, { level: 9 }).length,
  };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** tsc keeps `from "./stream.ts"` in declarations; consumers resolve `.js` everywhere (node16, bundler). */
function rewriteDeclarationImports(): void {
  for (const file of filesUnder(DIST).filter((f) => f.endsWith(".d.ts"))) {
    const text = readFileSync(file, "utf8");
    const fixed = text.replace(/(from\s+["'])(\.{1,2}\/[^"']+)\.ts(["'])/g, "$1$2.js$3");
    if (fixed !== text) writeFileSync(file, fixed);
  }
}

export async function buildClient(): Promise<BundleSize> {
  rmSync(DIST, { recursive: true, force: true });
  const js = await bundle(false);
  const banner = "// touchline/client: built by `bun run build` from src/client (do not edit)\n";
  await Bun.write(CLIENT_JS, banner + js);
  const tsc = Bun.spawnSync([join(ROOT, "node_modules/.bin/tsc"), "-p", join(ROOT, "src/client/tsconfig.build.json")], {
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  });
  if (tsc.exitCode !== 0) throw new Error(`tsc (declarations) failed with exit code ${tsc.exitCode}`);
  rewriteDeclarationImports();
  return await measureClient();
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

if (import.meta.main) {
  try {
    const size = await buildClient();
    const files = filesUnder(DIST)
      .map((f) => relative(ROOT, f))
      .sort();
    console.log(`built ${files.length} files in dist/ (${files.filter((f) => f.endsWith(".d.ts")).length} declarations)`);
    console.log(`touchline/client: ${kb(size.bytes)} as shipped, ${kb(size.minifiedBytes)} minified, ${kb(size.gzippedBytes)} minified+gzipped`);
  } catch (err) {
    console.error(`build failed: ${(err as Error).message}`);
    process.exit(1);
  }
}
