/**
 * A child process of the local cluster: started with the hard open-file limit (a node's connection cap
 * follows its limit), in its own process group (Ctrl-C in the terminal reaches only `bun run cluster`,
 * which then stops the children in order: nodes drain before NATS goes), its output in a log file.
 */
import { closeSync, openSync, readFileSync } from "node:fs";
import type { Subprocess } from "bun";

/** Raises the soft open-file limit to the hard one, then becomes the command. */
const RAISE_FD_LIMIT = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
const LOG_TAIL_BYTES = 4000;

export interface ServiceOptions {
  name: string;
  cmd: string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Where stdout and stderr go; "inherit" shares the terminal. */
  logFile: string | "inherit";
}

export class Service {
  readonly proc: Subprocess;

  constructor(readonly opts: ServiceOptions) {
    const out = opts.logFile === "inherit" ? "inherit" : openSync(opts.logFile, "w");
    this.proc = Bun.spawn(["sh", "-c", RAISE_FD_LIMIT, "sh", ...opts.cmd], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdin: "ignore",
      stdout: out,
      stderr: out,
      detached: true,
    });
    // The child holds its own copy of the descriptor.
    if (typeof out === "number") closeSync(out);
  }

  get name(): string {
    return this.opts.name;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Sends `signal`, waits up to `graceMs`, then SIGKILL. Resolves with how it ended. */
  async stop(signal: NodeJS.Signals, graceMs: number): Promise<string> {
    if (!this.running) return `had already exited (${this.proc.exitCode ?? this.proc.signalCode})`;
    this.proc.kill(signal);
    const ended = await Promise.race([this.proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
    if (ended) return `exited ${this.proc.exitCode ?? this.proc.signalCode}`;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
    return `killed after ${graceMs} ms`;
  }

  /** The end of its log, to show why it failed. */
  logTail(): string {
    if (this.opts.logFile === "inherit") return "";
    try {
      const text = readFileSync(this.opts.logFile, "utf8");
      return text.slice(-LOG_TAIL_BYTES);
    } catch {
      return "";
    }
  }
}

/** Polls `check` every `everyMs` until it is true; fails after `timeoutMs`, or at once if `abandon()` says so. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; everyMs?: number; abandon?: () => string | undefined },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    const reason = opts.abandon?.();
    if (reason) throw new Error(`${what}: ${reason}`);
    if (Date.now() > deadline) throw new Error(`${what}: timed out after ${opts.timeoutMs} ms`);
    await Bun.sleep(opts.everyMs ?? 100);
  }
}

/** True when something accepts TCP connections at host:port. */
export async function tcpOpen(host: string, port: number): Promise<boolean> {
  try {
    const s = await Bun.connect({ hostname: host, port, socket: { data() {} } });
    s.end();
    return true;
  } catch {
    return false;
  }
}
