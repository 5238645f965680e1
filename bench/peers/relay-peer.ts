/**
 * Peers that relay the published JSON body as the event data (/sub/<channel>, /pub/<channel>):
 * the Node tutorial pattern and the bare Bun loop.
 */
import { encodeTickEnvelope } from "../tick.ts";
import type { Peer, SubscribeTarget } from "./peer.ts";
import { BUN, ServerProcess, freePort, httpAnswers, postJson } from "./server-process.ts";

const START_TIMEOUT_MS = 10_000;
const NOT_FOUND = 404;

export class RelayPeer implements Peer {
  readonly resumes = false;
  readonly nodes = 1;
  readonly streamCap = null;
  private server: ServerProcess | null = null;
  private port = 0;

  constructor(
    readonly name: string,
    readonly title: string,
    private readonly command: string[],
    private readonly cpus: string,
  ) {}

  async start(): Promise<void> {
    this.port = freePort();
    this.server = new ServerProcess(this.name, this.command, { cpus: this.cpus, env: { PORT: String(this.port) } });
    // Any answer means it listens; `/` is not a route, so 404 is the expected one.
    await this.server.waitUntil(() => httpAnswers(`http://127.0.0.1:${this.port}/`, NOT_FOUND), START_TIMEOUT_MS);
  }

  subscribeTarget(): SubscribeTarget {
    return { ports: [this.port], pathTemplate: "/sub/{channel}" };
  }

  publish(channel: string, seq: number): Promise<void> {
    return postJson(`http://127.0.0.1:${this.port}/pub/${channel}`, encodeTickEnvelope(channel, seq, Date.now()));
  }

  pids(): number[] {
    return this.server === null ? [] : [this.server.pid];
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = null;
  }
}

export function nodePatternPeer(cpus: string): Peer {
  const script = new URL("./node-pattern.mjs", import.meta.url).pathname;
  return new RelayPeer("node", "Node http + EventEmitter", ["node", script], cpus);
}

export function bareBunPeer(cpus: string): Peer {
  const script = new URL("./bare-bun-server.ts", import.meta.url).pathname;
  return new RelayPeer("bun", "bare Bun.serve loop", [BUN, "run", script], cpus);
}
