/**
 * Configuration is validated at start-up: a bad value stops the node with a non-zero exit and one line
 * on stderr naming the variable (before it ever connects anywhere).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
/** Nothing listens here: a node that got past validation would hang trying to connect, not exit. */
const UNREACHABLE_NATS = "nats://127.0.0.1:1";
const EXIT_WITHIN_MS = 10_000;

async function startWith(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const proc = Bun.spawn([process.execPath, "run", join(ROOT, "src/main.ts")], {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", NATS_URL: UNREACHABLE_NATS, NODE_ID: "config-test", LOG_LEVEL: "warn", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), EXIT_WITHIN_MS);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code: proc.signalCode ? null : code, stderr, stdout };
}

const BAD: [string, string][] = [
  ["PORT", "abc"],
  ["PORT", "70000"],
  ["HEARTBEAT_MS", "-5"],
  ["HEARTBEAT_MS", "soon"],
  ["RETENTION", "forever"],
  ["MAX_CONNECTIONS", "0"],
  ["MAX_CONNECTIONS", "lots"],
  ["CLIENT_BUFFER_BYTES", "1.5"],
  ["RETRY_MS", "-1"],
  ["MAX_MATCHES_PER_STREAM", "0"],
  ["MAX_BODY_BYTES", "big"],
  ["WINDOW_EVENTS", "x"],
  ["WINDOW_BYTES", "1MB"],
  ["WINDOW_BUDGET_BYTES", "x"],
  ["SLOW_CLIENT_GRACE", "soon"],
  ["NATS_URL", "http://example.com/path"],
];

describe("a bad configuration value stops the node with one line naming it", () => {
  for (const [name, value] of BAD) {
    test(
      `${name}=${value}`,
      async () => {
        const { code, stderr } = await startWith({ [name]: value });
        expect(code).not.toBeNull();
        expect(code).not.toBe(0);
        const lines = stderr.split("\n").filter((l) => l.trim() !== "");
        expect(lines.length).toBe(1);
        expect(lines[0]!).toContain(name);
      },
      EXIT_WITHIN_MS + 5000,
    );
  }
});
