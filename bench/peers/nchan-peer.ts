/** nchan (the nginx pub/sub module) with one worker process; it resumes from Last-Event-ID. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childPids } from "../proc-stats.ts";
import { encodeTickEnvelope } from "../tick.ts";
import { nchanConfig } from "./nchan-config.ts";
import { NGINX_BINARY } from "./nchan-install.ts";
import type { Peer, SubscribeTarget } from "./peer.ts";
import { ServerProcess, freePort, httpAnswers, postJson } from "./server-process.ts";

const START_TIMEOUT_MS = 10_000;
const NOT_FOUND = 404;

export class NchanPeer implements Peer {
  readonly name = "nchan";
  readonly title = "nchan (nginx, 1 worker)";
  readonly resumes = true;
  readonly nodes = 1;
  readonly streamCap = null;
  private server: ServerProcess | null = null;
  private dir = "";
  private port = 0;

  constructor(
    private readonly cpus: string,
    private readonly fileLimit: number,
  ) {}

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), "bench-nchan-"));
    this.port = freePort();
    const configPath = join(this.dir, "nginx.conf");
    writeFileSync(configPath, nchanConfig({ dir: this.dir, port: this.port, fileLimit: this.fileLimit }));
    // -e: nginx opens its compiled-in error log before reading the config; keep it in our dir.
    this.server = new ServerProcess(this.name, [NGINX_BINARY, "-p", this.dir, "-c", configPath, "-e", join(this.dir, "error.log")], { cpus: this.cpus });
    await this.server.waitUntil(() => httpAnswers(`http://127.0.0.1:${this.port}/`, NOT_FOUND), START_TIMEOUT_MS);
  }

  subscribeTarget(): SubscribeTarget {
    return { ports: [this.port], pathTemplate: "/sub/{channel}" };
  }

  publish(channel: string, seq: number): Promise<void> {
    return postJson(`http://127.0.0.1:${this.port}/pub/${channel}`, encodeTickEnvelope(channel, seq, Date.now()));
  }

  /** The master and its worker. */
  pids(): number[] {
    return this.server === null ? [] : [this.server.pid, ...childPids(this.server.pid)];
  }

  async stop(): Promise<void> {
    // SIGTERM is nginx's fast shutdown: the worker closes its connections and exits with the master.
    await this.server?.stop();
    this.server = null;
    if (this.dir !== "") rmSync(this.dir, { recursive: true, force: true });
  }
}
