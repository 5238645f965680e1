/**
 * The typed client as a package: `bun run build` emits dist/ (ESM + .d.ts), and package.json's
 * `exports["./client"]` makes `import { TouchlineStream } from "touchline/client"` work in plain Node
 * (not Bun) against a real node, in TypeScript (node16/nodenext and bundler resolution) and in a bundler.
 * The consumer lives in a temp dir whose node_modules/touchline is a symlink to this repository, as
 * `npm link` or a workspace would make it. Prints the bundle size, minified and gzipped.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { useNode } from "../helpers/nodeFixture.ts";
import { getJson, publishOk, uniqueMatch } from "../integration/touchlineApi.ts";

setDefaultTimeout(60_000);

const ROOT = join(import.meta.dir, "..", "..");
const NODE = Bun.which("node");
/** A budget, so the client cannot grow by accident: it is about 5 KiB now. */
const GZIP_BUDGET_BYTES = 8 * 1024;

const { node } = useNode();
let dir: string;
let buildOutput = "";

const CONSUMER = `
import { TouchlineStream, matchStreamUrl, publish, applyStatePatch } from "touchline/client";

const [url, match, expected] = process.argv.slice(2);
const say = (obj) => console.log(JSON.stringify(obj));
say({ runtime: typeof Bun === "undefined" ? "node" : "bun", version: process.version });

let state = {};
let goals = 0;
const stream = new TouchlineStream(matchStreamUrl(url, match), { onError: (e) => say({ error: e.message }) });
stream.on("snapshot", (e) => {
  state = e.state;
  say({ ready: e.match });
});
stream.on("goal", async (e) => {
  state = applyStatePatch(state, e.state);
  say({ type: e.type, id: e.id, data: e.data });
  if (++goals === Number(expected)) {
    const answer = await publish(url, match, { type: "fulltime", data: { text: "full time" }, state: { status: "full-time" } });
    say({ published: answer.id });
  }
});
stream.on("fulltime", (e) => {
  state = applyStatePatch(state, e.state);
  say({ type: e.type, id: e.id, data: e.data, state, lastEventId: stream.lastEventId });
  stream.close();
});
await stream.done;
say({ closed: stream.state, readyState: stream.readyState });
// No process.exit: the process ends only if close() left no socket or timer behind.
`;

const TYPED_CONSUMER = `
import { TouchlineStream, multiStreamUrl, TouchlineHttpError, type MatchEvent, type FootballEventData, type PublishEvent } from "touchline/client";

const stream = new TouchlineStream(multiStreamUrl("http://127.0.0.1:3000", ["a", "b"]), { token: () => "t" });
stream.on("goal", (e: MatchEvent<"goal", FootballEventData>) => {
  const minute: number | undefined = e.data.minute;
  void minute;
});
// @ts-expect-error the football convention has no such field: the types are real, not any
stream.on("card", (e) => e.data.nosuchfield);
const event: PublishEvent = { type: "goal", data: { minute: 1 }, key: "k" };
const status: number = new TouchlineHttpError(503, "draining", "later", 1000).status;
void event; void status;
stream.close();
`;

function run(cmd: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: process.env });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

beforeAll(() => {
  const build = run([process.execPath, "run", "build"], ROOT);
  buildOutput = build.stdout;
  if (build.code !== 0) throw new Error(`bun run build failed:\n${build.stdout}\n${build.stderr}`);
  dir = mkdtempSync(join(tmpdir(), "touchline-consumer-"));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(ROOT, join(dir, "node_modules", "touchline"), "dir");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  writeFileSync(join(dir, "consumer.mjs"), CONSUMER);
  writeFileSync(join(dir, "typed.ts"), TYPED_CONSUMER);
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("touchline/client as a package", () => {
  test("bun run build emits ESM and declarations into dist/ and reports the size", () => {
    for (const file of ["dist/client/index.js", "dist/client/index.d.ts", "dist/client/stream.d.ts", "dist/match/mergePatch.d.ts"]) {
      expect(existsSync(join(ROOT, file))).toBe(true);
    }
    const js = readFileSync(join(ROOT, "dist/client/index.js"), "utf8");
    expect(js).toContain("export {");
    expect(js).not.toMatch(/from\s+["'](?:\.|node:|bun)/); // one self-contained file
    const declarations = readFileSync(join(ROOT, "dist/client/index.d.ts"), "utf8");
    expect(declarations).not.toMatch(/from\s+["']\.[^"']*\.ts["']/);
    const size = /([\d.]+) KiB as shipped, ([\d.]+) KiB minified, ([\d.]+) KiB minified\+gzipped/.exec(buildOutput);
    expect(size).not.toBeNull();
    const gzipped = Number(size![3]) * 1024;
    console.log(`touchline/client bundle: ${size![1]} KiB as shipped, ${size![2]} KiB minified, ${size![3]} KiB minified+gzipped`);
    expect(gzipped).toBeLessThan(GZIP_BUDGET_BYTES);
  });

  test("plain node imports it through the package export and streams from a real node, then exits by itself", async () => {
    expect(NODE).not.toBeNull();
    const match = uniqueMatch("pkg");
    await publishOk(node.url, match, { type: "kickoff", data: null, state: { home: "ARS", away: "CHE", homeScore: 0, awayScore: 0 } });
    const proc = Bun.spawn([NODE!, "consumer.mjs", node.url, match, "3"], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const lines: Record<string, unknown>[] = [];
    const reading = (async () => {
      let buf = "";
      for await (const chunk of proc.stdout) {
        buf += new TextDecoder().decode(chunk);
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
          buf = buf.slice(nl + 1);
        }
      }
    })();
    const deadline = Date.now() + 15_000;
    while (!lines.some((l) => l.ready === match)) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`no snapshot: ${JSON.stringify(lines)} ${await new Response(proc.stderr).text()}`);
      await Bun.sleep(20);
    }
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) ids.push(await publishOk(node.url, match, { type: "goal", data: { team: "home", minute: i * 10 }, state: { homeScore: i } }));

    const code = await proc.exited;
    clearTimeout(timer);
    await reading;
    const stderr = await new Response(proc.stderr).text();
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" }); // exited by itself: close() left nothing running
    expect(lines[0]).toMatchObject({ runtime: "node" });
    expect(Number(/^v(\d+)/.exec(String(lines[0]!.version))![1])).toBeGreaterThanOrEqual(18);
    const goals = lines.filter((l) => l.type === "goal");
    expect(goals.map((l) => [l.id, l.data])).toEqual(ids.map((id, i) => [id, { team: "home", minute: (i + 1) * 10 }]));
    const published = lines.find((l) => "published" in l)?.published as string;
    const fulltime = lines.find((l) => l.type === "fulltime")!;
    expect(fulltime).toMatchObject({ id: published, lastEventId: published, data: { text: "full time" } });
    const read = await getJson<{ id: string; state: unknown }>(`${node.url}/matches/${match}`);
    expect(fulltime.state).toEqual(read.json.state);
    expect(read.json.state).toMatchObject({ homeScore: 3, status: "full-time" });
    expect(lines.at(-1)).toEqual({ closed: "closed", readyState: 2 });
  });

  test.each(["nodenext", "bundler"])("TypeScript consumers get the declarations (moduleResolution %s)", (resolution) => {
    const config = {
      compilerOptions: {
        target: "ES2022",
        module: resolution === "nodenext" ? "nodenext" : "esnext",
        moduleResolution: resolution,
        lib: ["ES2022", "DOM"],
        types: [],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
      },
      files: ["typed.ts"],
    };
    writeFileSync(join(dir, `tsconfig.${resolution}.json`), JSON.stringify(config));
    const tsc = run([join(ROOT, "node_modules/.bin/tsc"), "-p", `tsconfig.${resolution}.json`], dir);
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.code).toBe(0);
  });

  test("a bundler resolves the export for the browser without Node built-ins", async () => {
    const entry = join(dir, "page.mjs");
    writeFileSync(entry, `import { TouchlineStream } from "touchline/client";\nwindow.stream = new TouchlineStream("/events?match=a");\n`);
    const result = await Bun.build({ entrypoints: [entry], target: "browser", minify: true });
    expect(result.success).toBe(true);
    const text = await result.outputs[0]!.text();
    expect(text).toContain("last-event-id");
    expect(text).not.toContain("node:");
  });

  test("npm pack ships dist/ (git-ignored) and the exports resolve inside the tarball's file list", () => {
    const pack = run(["npm", "pack", "--dry-run", "--json", "--ignore-scripts"], ROOT);
    expect(pack.code).toBe(0);
    const files = (JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { exports: Record<string, { types: string; default: string }> };
    const client = pkg.exports["./client"]!;
    expect(files).toContain(client.default.replace(/^\.\//, ""));
    expect(files).toContain(client.types.replace(/^\.\//, ""));
    expect(files).toContain("src/cli/main.ts");
  });
});
