/**
 * Runs the touchline CLI as a separate process (`bun src/cli/main.ts ...`), as a user would, with an
 * environment stripped of the TOUCHLINE_* variables the test runner may carry.
 */
import type { Subprocess } from "bun";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..", "..");
const BUN = process.execPath;
const MAIN = join(ROOT, "src/cli/main.ts");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type CliEnv = Record<string, string | undefined>;

function envOf(extra: CliEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("TOUCHLINE_")) env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Runs one command to its end. */
export async function cli(args: string[], opts: { env?: CliEnv; stdin?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const proc = Bun.spawn([BUN, MAIN, ...args], {
    cwd: ROOT,
    env: envOf(opts.env ?? {}),
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A long-running command (tail): its output as it comes, line by line. */
export class RunningCli {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  private out = "";
  private err = "";
  readonly exited: Promise<number>;

  constructor(args: string[], env: CliEnv = {}) {
    this.proc = Bun.spawn([BUN, MAIN, ...args], { cwd: ROOT, env: envOf(env), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const outDone = this.collect(this.proc.stdout, (t) => (this.out += t));
    const errDone = this.collect(this.proc.stderr, (t) => (this.err += t));
    this.exited = Promise.all([this.proc.exited, outDone, errDone]).then(([code]) => code);
  }

  private async collect(stream: ReadableStream<Uint8Array>, add: (text: string) => void): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of stream) add(dec.decode(chunk, { stream: true }));
  }

  get lines(): string[] {
    return this.out.split("\n").filter((l) => l !== "");
  }

  get stderr(): string {
    return this.err;
  }

  async waitFor(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nstdout:\n${this.out}\nstderr:\n${this.err}`);
      if (this.proc.exitCode !== null) throw new Error(`the CLI exited (${this.proc.exitCode}) before ${what}\nstdout:\n${this.out}\nstderr:\n${this.err}`);
      await Bun.sleep(25);
    }
  }

  /** Waits until stdout holds at least n lines. */
  async waitForLines(n: number, timeoutMs?: number): Promise<string[]> {
    await this.waitFor(`${n} lines`, () => this.lines.length >= n, timeoutMs);
    return this.lines;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
    await this.exited;
  }
}
