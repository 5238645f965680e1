/**
 * A TCP proxy that sits between one process and a server (a node and nats-server in the fault suite)
 * and fails the link the ways networks do:
 *
 * - `blackhole()`: process and sockets stay open but no byte crosses, either way. Bytes written meanwhile
 *   are held here and delivered after `heal()`, as TCP retransmission would deliver them; a close seen
 *   meanwhile is held too (a FIN is retransmitted like data). A connection opened meanwhile is accepted
 *   but not spliced to the server until the heal, so it hears nothing (not even the server's greeting).
 * - `cut({ refuse })`: every current connection is closed at once (both sides, held bytes dropped), like a
 *   reset. With `refuse`, new connections are closed as soon as they arrive until `heal()`.
 * - `heal()`: back to passing bytes, held ones first, in order.
 *
 * Held bytes live in this process's memory rather than in kernel buffers: a test's link carries little,
 * and reading everything keeps "no byte crosses" independent of how the runtime pauses sockets.
 */
import type { Socket, TCPSocketListener } from "bun";

/** `refuse`: after `cut({ refuse: true })`, new connections are closed on arrival. */
export type FaultMode = "pass" | "blackhole" | "refuse";

export interface FaultProxy {
  /** The port to point the client process at. */
  readonly port: number;
  readonly mode: FaultMode;
  /** Connections currently open from the client side. */
  connections(): number;
  blackhole(): void;
  cut(opts?: { refuse?: boolean }): void;
  heal(): void;
  stop(): void;
}

export interface FaultProxyOptions {
  target: { host: string; port: number };
  hostname?: string;
  port?: number;
}

type Side = Socket<Link>;

/** One direction of a link: bytes waiting for `to`, and whether `from` has closed after them. */
class Pipe {
  readonly queue: Uint8Array[] = [];
  ended = false;
}

/** One accepted connection and its connection to the target. */
class Link {
  upstream: Side | undefined;
  connecting = false;
  closed = false;
  readonly toUpstream = new Pipe();
  readonly toClient = new Pipe();

  constructor(
    readonly client: Side,
    private readonly proxy: LinkProxy,
  ) {}

  /** Moves whatever may cross now; called after every change (data, drain, close, heal). */
  pump(): void {
    if (this.closed || this.proxy.mode !== "pass") return;
    if (!this.upstream) {
      this.proxy.connect(this);
      return;
    }
    this.flush(this.toUpstream, this.upstream, this.client);
    this.flush(this.toClient, this.client, this.upstream);
  }

  /** Writes `pipe` into `to`; `from` is paused while `to` cannot take more (backpressure). */
  private flush(pipe: Pipe, to: Side, from: Side): void {
    while (pipe.queue.length > 0) {
      const head = pipe.queue[0]!;
      const written = to.write(head);
      if (written < 0) return; // `to` is closing; its close handler finishes the link
      if (written < head.byteLength) {
        pipe.queue[0] = head.subarray(written);
        from.pause();
        return;
      }
      pipe.queue.shift();
    }
    from.resume();
    if (pipe.ended) to.end();
  }

  /** Drops everything and closes both sides now. */
  terminate(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.terminate();
    this.upstream?.terminate();
    this.proxy.forget(this);
  }
}

class LinkProxy implements FaultProxy {
  mode: FaultMode = "pass";
  private readonly links = new Set<Link>();
  private readonly listener: TCPSocketListener<Link>;

  constructor(private readonly opts: FaultProxyOptions) {
    const proxy = this;
    this.listener = Bun.listen<Link>({
      hostname: opts.hostname ?? "127.0.0.1",
      port: opts.port ?? 0,
      socket: {
        binaryType: "uint8array",
        open(client) {
          client.data = new Link(client, proxy);
          if (proxy.mode === "refuse") {
            client.terminate();
            return;
          }
          proxy.links.add(client.data);
          client.data.pump();
        },
        data(client, chunk) {
          // Copied: the runtime may reuse the buffer once this callback returns.
          client.data.toUpstream.queue.push(chunk.slice());
          client.data.pump();
        },
        drain(client) {
          client.data.pump();
        },
        close(client) {
          client.data.toUpstream.ended = true;
          proxy.sideClosed(client.data);
        },
        error(client) {
          client.data.toUpstream.ended = true;
          proxy.sideClosed(client.data);
        },
      },
    });
  }

  get port(): number {
    return this.listener.port;
  }

  connections(): number {
    return this.links.size;
  }

  connect(link: Link): void {
    if (link.connecting) return;
    link.connecting = true;
    const proxy = this;
    Bun.connect<Link>({
      hostname: this.opts.target.host,
      port: this.opts.target.port,
      data: link,
      socket: {
        binaryType: "uint8array",
        open(upstream) {
          if (link.closed) {
            upstream.terminate();
            return;
          }
          link.upstream = upstream;
          link.pump();
        },
        data(_upstream, chunk) {
          link.toClient.queue.push(chunk.slice());
          link.pump();
        },
        drain() {
          link.pump();
        },
        close() {
          link.toClient.ended = true;
          proxy.sideClosed(link);
        },
        error() {
          link.toClient.ended = true;
          proxy.sideClosed(link);
        },
        connectError() {
          // Reported through the rejected promise below.
        },
      },
    }).catch(() => link.terminate()); // target down: the client sees its connection closed, as a refusal
  }

  /** One side closed: pass the close on after the bytes before it (held during a black hole). */
  sideClosed(link: Link): void {
    if (link.closed) return;
    if (link.toUpstream.ended && link.toClient.ended && this.mode === "pass") {
      link.pump();
      link.closed = true;
      this.forget(link);
      return;
    }
    link.pump();
  }

  forget(link: Link): void {
    this.links.delete(link);
  }

  blackhole(): void {
    this.mode = "blackhole";
  }

  cut(opts: { refuse?: boolean } = {}): void {
    // Without `refuse` only the current connections go; new ones pass (or stay held in a black hole).
    if (opts.refuse) this.mode = "refuse";
    for (const link of [...this.links]) link.terminate();
  }

  heal(): void {
    this.mode = "pass";
    for (const link of [...this.links]) link.pump();
  }

  stop(): void {
    this.listener.stop(true);
    for (const link of [...this.links]) link.terminate();
  }
}

export function startFaultProxy(opts: FaultProxyOptions): FaultProxy {
  return new LinkProxy(opts);
}
