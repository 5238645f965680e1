/** A throwaway JetStream nats-server for a Touchline peer: its own store dir and ports, loopback only. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ServerProcess, freePort, httpAnswers } from "./server-process.ts";

const START_TIMEOUT_MS = 10_000;

export class NatsServer {
  private server: ServerProcess | null = null;
  private dir = "";
  private port = 0;
  private monitorPort = 0;

  constructor(private readonly cpus: string) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The monitoring endpoint (`/jsz`, `/healthz`): read without costing the server a JetStream API call. */
  get monitorUrl(): string {
    return `http://127.0.0.1:${this.monitorPort}`;
  }

  get pid(): number | null {
    return this.server?.pid ?? null;
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), "bench-nats-"));
    this.port = freePort();
    this.monitorPort = freePort();
    this.server = new ServerProcess(
      "nats-server",
      ["nats-server", "-js", "-sd", this.dir, "-a", "127.0.0.1", "-p", String(this.port), "-m", String(this.monitorPort)],
      { cpus: this.cpus },
    );
    // /healthz answers 200 once JetStream is up, not merely once the port listens.
    await this.server.waitUntil(() => httpAnswers(`${this.monitorUrl}/healthz`), START_TIMEOUT_MS);
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = null;
    if (this.dir !== "") rmSync(this.dir, { recursive: true, force: true });
  }
}
