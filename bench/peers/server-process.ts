/**
 * A peer's server process: launched through launch.sh (file limit raised, pinned to the server
 * cores), its output kept (the tail only) to explain a failed start, stopped by its own pid.
 */
import type { Subprocess } from "bun";

const LAUNCHER = new URL("../launch.sh", import.meta.url).pathname;
export const REPO_ROOT = new URL("../../", import.meta.url).pathname;
export const BUN = `${REPO_ROOT}node_modules/.bin/bun`;
const OUTPUT_TAIL_CHARS = 4_000;
const STOP_GRACE_MS = 5_000;
const READY_POLL_MS = 100;
const PROBE_TIMEOUT_MS = 2_000;
/** A publish is one small POST; a peer that takes longer than this is stuck. */
const PUBLISH_TIMEOUT_MS = 10_000;
/** How long a dead server's last output may take to reach us. */
const OUTPUT_DRAIN_MS = 1_000;

/** Every server still running, killed if the bench itself dies so no peer outlives it. */
const running = new Set<Subprocess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export interface LaunchOptions {
  cpus: string;
  env?: Record<string, string>;
  cwd?: string;
}

export class ServerProcess {
  private output = "";
  private readonly process: Subprocess<"ignore", "pipe", "pipe">;
  /** Settle once stdout and stderr are read to their end. */
  private readonly tails: Promise<void>[];

  constructor(
    readonly name: string,
    command: string[],
    options: LaunchOptions,
  ) {
    this.process = Bun.spawn([LAUNCHER, options.cpus, ...command], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    running.add(this.process);
    void this.process.exited.then(() => running.delete(this.process));
    this.tails = [this.keepTail(this.process.stdout), this.keepTail(this.process.stderr)];
  }

  get pid(): number {
    return this.process.pid;
  }

  get exited(): boolean {
    return this.process.exitCode !== null || this.process.signalCode !== null;
  }

  /** The last few KB the process printed, for error messages. */
  get outputTail(): string {
    return this.output;
  }

  /** Polls `ready` until it holds; fails early with the process's output if it died. */
  async waitUntil(ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (this.exited) throw new Error(`${this.name} exited during start (${await this.howItEnded()}):\n${this.output}`);
      if (await ready().catch(() => false)) return;
      await Bun.sleep(READY_POLL_MS);
    }
    throw new Error(`${this.name} not ready within ${timeoutMs} ms:\n${this.output}`);
  }

  /** Its exit code or signal, once what it printed last is read (a crash's message comes last). */
  private async howItEnded(): Promise<string> {
    await Promise.race([Promise.all(this.tails), Bun.sleep(OUTPUT_DRAIN_MS)]);
    const { exitCode, signalCode } = this.process;
    return signalCode !== null ? `signal ${signalCode}` : `exit code ${exitCode}`;
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.exited) return;
    this.process.kill(signal);
    const timer = setTimeout(() => this.process.kill("SIGKILL"), STOP_GRACE_MS);
    await this.process.exited;
    clearTimeout(timer);
  }

  private async keepTail(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      this.output = (this.output + decoder.decode(chunk, { stream: true })).slice(-OUTPUT_TAIL_CHARS);
    }
  }
}

/** A port for a peer's server: below the ephemeral range the load generator's connections take. */
export { freeListenPort as freePort } from "../../test/helpers/listenPort.ts";

export async function httpAnswers(url: string, expectStatus = 200): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  await response.arrayBuffer();
  return response.status === expectStatus;
}

/** POSTs a JSON body; throws unless the answer is 2xx. */
export async function postJson(url: string, body: string): Promise<void> {
  const response = await fetch(url, {
    method: "POST",
    body,
    headers: { "Content-Type": "application/json" },
    signal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS),
  });
  const text = await response.text();
  if (response.status < 200 || response.status > 299) throw new Error(`POST ${url} answered ${response.status}: ${text}`);
}
