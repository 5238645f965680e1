/**
 * A TCP splice: one accepted client connection joined to one backend connection, bytes passing
 * untouched both ways. Used by the test and local-cluster balancer (cluster/tcpBalancer.ts) and by the
 * PROXY protocol front of a node (src/proxy/proxyFront.ts).
 *
 * Backpressure: a write that takes less than the whole chunk means the receiving socket's kernel buffer
 * is full. The rest is queued and the sending side is paused until the receiver drains, so a slow
 * reader holds at most one chunk per direction here instead of growing memory without bound.
 */
import type { Socket } from "bun";

/** Either end of a splice; its `data` belongs to whoever accepted or opened it. */
export type Side = Socket<unknown>;

/** Bytes accepted from one side that the other side's socket has not taken yet. */
class PendingWrites {
  private chunks: Uint8Array[] = [];

  get empty(): boolean {
    return this.chunks.length === 0;
  }

  push(chunk: Uint8Array): void {
    // Copied: the runtime may reuse the buffer it handed to the data callback.
    this.chunks.push(chunk.slice());
  }

  /** Writes as much as `to` accepts; true when everything went out. */
  flushTo(to: Side): boolean {
    while (this.chunks.length > 0) {
      const head = this.chunks[0]!;
      const written = to.write(head);
      if (written < 0) return false;
      if (written < head.byteLength) {
        this.chunks[0] = head.subarray(written);
        return false;
      }
      this.chunks.shift();
    }
    return true;
  }
}

/** One client connection and the backend connection it is spliced to. */
export class Splice {
  upstream: Side | undefined;
  readonly toUpstream = new PendingWrites();
  readonly toClient = new PendingWrites();
  private closing = false;

  constructor(
    readonly client: Side,
    private readonly onDone: (s: Splice) => void,
  ) {}

  fromClient(chunk: Uint8Array): void {
    if (!this.upstream) {
      // Still connecting: hold what the client sent and stop reading until the backend is there.
      this.toUpstream.push(chunk);
      this.client.pause();
      return;
    }
    forward(chunk, this.client, this.upstream, this.toUpstream);
  }

  fromUpstream(upstream: Side, chunk: Uint8Array): void {
    // The socket comes from the callback: a backend may speak before attach() has run.
    forward(chunk, upstream, this.client, this.toClient);
  }

  /** The backend is connected: send what the client sent meanwhile, then let the client flow. */
  attach(upstream: Side): void {
    if (this.closing) {
      upstream.end();
      return;
    }
    this.upstream = upstream;
    if (this.toUpstream.flushTo(upstream)) this.client.resume();
  }

  /** `side` can take more: send what waits for it and let the opposite side read again. */
  drained(side: Side): void {
    const isClient = side === this.client;
    const queue = isClient ? this.toClient : this.toUpstream;
    const source = isClient ? this.upstream : this.client;
    if (!queue.flushTo(side)) return;
    if (this.closing) side.end();
    else source?.resume();
  }

  /** Either side went away: the other ends too, once what was already accepted for it is written. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.onDone(this);
    endAfterFlush(this.client, this.toClient);
    if (this.upstream) endAfterFlush(this.upstream, this.toUpstream);
  }

  /** Stops at once, dropping anything queued (the balancer is shutting down). */
  abort(): void {
    this.closing = true;
    this.client.terminate();
    this.upstream?.terminate();
  }
}

function forward(chunk: Uint8Array, from: Side, to: Side, queue: PendingWrites): void {
  if (!queue.empty) {
    // Ordering: older bytes are still waiting; `from` is already paused, this chunk was in flight.
    queue.push(chunk);
    return;
  }
  const written = to.write(chunk);
  if (written < 0) return; // `to` is closing; its close handler tears the splice down
  if (written < chunk.byteLength) {
    queue.push(chunk.subarray(written));
    from.pause();
  }
}

function endAfterFlush(side: Side, queue: PendingWrites): void {
  if (side.readyState <= 0) return; // already closed
  if (queue.flushTo(side)) side.end();
  // Otherwise the drain handler ends it once the queue is empty.
}

/** Socket handlers for the backend side, whose `data` is its Splice. */
const upstreamHandlers = {
  binaryType: "uint8array" as const,
  data(s: Socket<Splice>, chunk: Uint8Array) {
    s.data.fromUpstream(s, chunk);
  },
  drain(s: Socket<Splice>) {
    s.data.drained(s);
  },
  close(s: Socket<Splice>) {
    s.data.close();
  },
  error(s: Socket<Splice>) {
    s.data.close();
  },
  connectError() {
    // Reported through the rejected Bun.connect promise, handled by the caller.
  },
};

/** Connects `splice` to host:port; the backend socket once open, undefined when refused or unreachable. */
export async function connectUpstream(splice: Splice, host: string, port: number): Promise<Socket<Splice> | undefined> {
  try {
    return await Bun.connect<Splice>({ hostname: host, port, data: splice, socket: upstreamHandlers });
  } catch {
    return undefined;
  }
}
