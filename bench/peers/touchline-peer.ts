/**
 * Touchline, one node (`src/main.ts`) with its own JetStream nats-server. The nats-server counts
 * as part of the peer: its CPU and memory are the price of durability and replay.
 */
import { existsSync } from 'node:fs'
import { encodeTickData } from '../tick.ts'
import { NatsServer } from './nats-server.ts'
import type { Peer, SubscribeTarget } from './peer.ts'
import { BUN, REPO_ROOT, ServerProcess, freePort, httpAnswers, postJson } from './server-process.ts'

export const TOUCHLINE_ENTRY = `${REPO_ROOT}src/main.ts`
const START_TIMEOUT_MS = 20_000
/** Comment heartbeats as in production, yet rare enough not to colour a 20 s scenario. */
const HEARTBEAT_MS = 15_000
const TICK_TYPE = 'tick'

export function touchlineAvailable(): boolean {
  return existsSync(TOUCHLINE_ENTRY)
}

export class TouchlineNodePeer implements Peer {
  readonly name = 'touchline'
  readonly title = 'Touchline, 1 node + NATS'
  readonly resumes = true
  private readonly nats: NatsServer
  private node: ServerProcess | null = null
  private port = 0

  /** `maxConnections`: the node's stream cap, at least the largest scenario's stream count. */
  constructor(
    private readonly cpus: string,
    private readonly maxConnections: number,
  ) {
    this.nats = new NatsServer(cpus)
  }

  async start(): Promise<void> {
    await this.nats.start()
    this.port = freePort()
    this.node = new ServerProcess(this.name, [BUN, 'run', TOUCHLINE_ENTRY], {
      cpus: this.cpus,
      env: {
        PORT: String(this.port),
        NATS_URL: this.nats.url,
        NODE_ID: `bench-${this.port}`,
        MAX_CONNECTIONS: String(this.maxConnections),
        HEARTBEAT_MS: String(HEARTBEAT_MS),
      },
    })
    await this.node.waitUntil(() => httpAnswers(`http://127.0.0.1:${this.port}/readyz`), START_TIMEOUT_MS)
  }

  subscribeTarget(): SubscribeTarget {
    return { port: this.port, pathTemplate: '/matches/{channel}/events' }
  }

  /** Touchline stamps `ts` itself when JetStream has stored the event. */
  publish(channel: string, seq: number): Promise<void> {
    return postJson(
      `http://127.0.0.1:${this.port}/matches/${channel}/events`,
      `{"type":"${TICK_TYPE}","data":${encodeTickData(seq)}}`,
    )
  }

  pids(): number[] {
    const pids: number[] = []
    if (this.node !== null) pids.push(this.node.pid)
    if (this.nats.pid !== null) pids.push(this.nats.pid)
    return pids
  }

  async stop(): Promise<void> {
    await this.node?.stop()
    this.node = null
    await this.nats.stop()
  }
}
