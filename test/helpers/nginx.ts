/**
 * Debian's nginx in front of test nodes, run as this user: a temp prefix holding a generated nginx.conf
 * (pid, logs and temp paths inside it), `daemon off` so the test owns the process, on a free port.
 *
 * The server and upstream come from the repository's example, cluster/nginx/touchline.conf, with two
 * lines changed: its `listen` (the free port) and its upstream `server` (the nodes'). `edit` may change
 * more (a control run with buffering forced back on). The http context around it turns gzip on for
 * every type, event streams included, as a careless global setting would: the example must keep its
 * streams out of it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, waitFor } from "./cluster.ts";

export const EXAMPLE_CONFIG = join(import.meta.dir, "..", "..", "cluster", "nginx", "touchline.conf");

export function nginxBinary(): string | undefined {
  return Bun.which("nginx") ?? ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => existsSync(p));
}

export interface NginxFixture {
  url: string;
  port: number;
  dir: string;
  /** The touchline.conf as run. */
  config: string;
  errorLog(): string;
  stop(): Promise<void>;
}

/** The example with its listen port and upstream servers replaced; throws if either line moved. */
export function exampleFor(port: number, backends: string[], edit: (conf: string) => string = (c) => c): string {
  const example = readFileSync(EXAMPLE_CONFIG, "utf8");
  const listen = /^(\s*)listen 80;$/m;
  const server = /^(\s*)server 127\.0\.0\.1:3000 (.*);$/m;
  if (!listen.test(example) || !server.test(example))
    throw new Error(`${EXAMPLE_CONFIG}: the test expects its "listen 80;" and "server 127.0.0.1:3000 ...;" lines`);
  const conf = example
    .replace(listen, `$1listen 127.0.0.1:${port};`)
    .replace(server, (_, indent: string, params: string) => backends.map((b) => `${indent}server ${b} ${params};`).join("\n"));
  return edit(conf);
}

export async function startNginx(backends: string[], opts: { edit?: (conf: string) => string } = {}): Promise<NginxFixture> {
  const bin = nginxBinary();
  if (!bin) throw new Error("nginx is not installed (scripts/setup.sh installs Debian's nginx)");
  const dir = mkdtempSync(join(tmpdir(), "touchline-nginx-"));
  const port = await freePort();
  const config = exampleFor(port, backends, opts.edit);
  writeFileSync(join(dir, "touchline.conf"), config);
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    join(dir, "nginx.conf"),
    [
      // As root nginx would hand its workers to `nobody`, who cannot write this temp prefix.
      asRoot ? "user root;" : "",
      "daemon off;",
      "worker_processes 1;",
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      "events { worker_connections 4096; }",
      "http {",
      `  access_log ${dir}/access.log;`,
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${dir}/${t};`),
      "  gzip on; gzip_proxied any; gzip_min_length 1; gzip_types *;",
      `  include ${dir}/touchline.conf;`,
      "}",
      "",
    ].join("\n"),
  );
  const check = Bun.spawnSync([bin, "-t", "-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], { stderr: "pipe" });
  if (check.exitCode !== 0) throw new Error(`nginx -t refused the configuration:\n${check.stderr.toString()}\n${config}`);
  const proc: Subprocess = Bun.spawn([bin, "-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], { stdout: "ignore", stderr: "pipe" });
  // A test run that ends without its afterAll (a timeout, Ctrl-C) must not leave nginx behind.
  const orphaned = (): void => {
    proc.kill("SIGKILL");
  };
  process.once("exit", orphaned);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/healthz`)).status === 200, 10_000, `nginx on ${port}`).catch((e) => {
    proc.kill("SIGKILL");
    throw new Error(`${(e as Error).message}\n${safeRead(join(dir, "error.log"))}`);
  });
  return {
    url,
    port,
    dir,
    config,
    errorLog: () => safeRead(join(dir, "error.log")),
    stop: async () => {
      // SIGTERM: fast shutdown of the master we started and its workers.
      process.off("exit", orphaned);
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
