/**
 * BunTransport: the NATS client's socket on Bun's own TCP API (`Bun.connect`) instead of `node:net`.
 *
 * Every event a node stores, every acknowledgement and every message of the stream tail crosses this
 * socket. Under Bun, a `node:net` write goes through the Node stream machinery and cost about 19 µs of
 * the node's CPU per write against 4 µs for `Bun.connect`'s (measured on this machine, one small
 * publish per event-loop turn), which was a tenth of a publish's cost in the node.
 *
 * Same contract as @nats-io/transport-node's NodeTransport (connect, the received chunks as an async
 * iterator, send, close). What the socket does not take at once waits in order and goes on `drain`.
 * A server that asks for TLS is handed to NodeTransport, which knows how to upgrade the connection.
 */
import { type ConnectionOptions, type NatsConnection, checkOptions, deferred, errors, extractProtocolMessage, INFO } from "@nats-io/nats-core/internal";
import { NatsConnectionImpl, setTransportFactory } from "@nats-io/nats-core/internal";
import type { Deferred, Server, ServerInfo, Transport } from "@nats-io/nats-core/internal";
import { NodeTransport, nodeResolveHost } from "@nats-io/transport-node/lib/node_transport.js";
import type { Socket } from "bun";

const LANG = "nats.js";
const VERSION = "3.4.0";
/**
 * What the client parses and dispatches of what arrived goes in slices of at most this many bytes, and
 * once a turn of the event loop has spent READ_TURN_BUDGET_MS on them the rest waits for the next turn.
 * Why: under load one read brings hundreds of KB (a batch's acks, its events off the stream tail), and
 * dispatching all of it at once kept the loop busy for 60-150 ms with 20,000 matches (owners starting,
 * fan-out): no health check, timer or HTTP request got a turn meanwhile. Slicing keeps the order.
 * The budget is small because nats-server shares the node's core in the bench (and may in a small
 * deployment): each of the node's turns stretches by whatever the server runs meanwhile (16 KB and 10 ms
 * left /readyz at 75-98 ms while 20,000 matches took events; 8 KB and 4 ms, 36-58 ms max and a p99 of
 * 29-33 ms in four runs; 4 KB and 2 ms, with a flush turn of 200 streams, 24-49 ms max and p99 19-22 ms in
 * three, with the same node CPU per saturated publish and per delivery).
 */
const READ_SLICE_BYTES = 4 * 1024;
const READ_TURN_BUDGET_MS = 2;

/**
 * The server verifies its clients' certificates (`tls_verify` in its INFO) and this client has none to
 * show. Said before the handshake: under Bun the server's refusal is not reported to the client, which
 * waited out its connect timeout (20 s) and then only said it timed out.
 */
export function clientCertificateMissing(info: Pick<ServerInfo, "tls_verify">, options: Pick<ConnectionOptions, "tls">): Error | undefined {
  if (info.tls_verify !== true) return undefined;
  const tls = options.tls ?? {};
  if (tls.certFile !== undefined || tls.cert !== undefined) return undefined;
  return new errors.ConnectionError(
    "the NATS server verifies client certificates (tls_verify) and this node has none: set NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE",
  );
}

/** Settles in a later turn of the event loop, after pending I/O and due timers. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class BunTransport implements Transport {
  readonly lang = LANG;
  readonly version = VERSION;
  closeError?: Error;
  private socket: Socket | undefined;
  /** The transport that took over a connection needing TLS. */
  private delegate: Transport | undefined;
  private connected = false;
  private done = false;
  private yields: Uint8Array[] = [];
  private signal: Deferred<void> = deferred();
  private readonly closedNotification: Deferred<void | Error> = deferred();
  /** Bytes the socket has not taken yet, in order. */
  private unsent: Uint8Array[] = [];
  private socketError: Error | undefined;
  /** Called once `unsent` is empty (or the socket is gone) while a close waits for it. */
  private allSent: (() => void) | undefined;
  /** Settled by the server's first protocol line (INFO). */
  private info: Deferred<ServerInfo> | undefined;

  get isClosed(): boolean {
    return this.delegate ? this.delegate.isClosed : this.done;
  }

  async connect(hp: Server, options: ConnectionOptions): Promise<void> {
    this.info = deferred();
    try {
      this.socket = await Bun.connect({
        hostname: hp.hostname,
        port: hp.port,
        socket: {
          data: (_socket, data) => this.received(data),
          drain: () => this.writeUnsent(),
          error: (_socket, err) => {
            this.socketError = err;
          },
          end: (socket) => {
            // The server closed its side: finish ours.
            socket.end();
          },
          close: () => this.onSocketClosed(),
          connectError: (_socket, err) => {
            this.socketError = err;
          },
        },
      });
      this.socket.setNoDelay(true);
      const info = await this.info;
      checkOptions(info, options);
      const certificateMissing = clientCertificateMissing(info, options);
      if (certificateMissing) throw certificateMissing;
      const tlsWanted = info.tls_required === true || (info.tls_available === true && options.tls !== null && options.tls !== undefined);
      if (tlsWanted) {
        this.discardSocket();
        const node = new NodeTransport();
        await node.connect(hp, options);
        this.delegate = node;
        // The client listens to this transport's closed() from before connect: the delegate's end is ours.
        void node.closed().then((why) => {
          this.closeError = node.closeError;
          this.closedNotification.resolve(why);
        });
        return;
      }
      if (this.done) throw new errors.ConnectionError("connection closed while connecting");
      this.connected = true;
    } catch (ex) {
      this.discardSocket();
      const err = (ex ?? this.socketError) as { code?: string } | undefined;
      if (err?.code === "ECONNREFUSED") throw new errors.ConnectionError("connection refused", { cause: err });
      throw err ?? new errors.ConnectionError("error connecting");
    }
  }

  private received(data: Uint8Array): void {
    this.yields.push(data);
    if (this.info && !this.connected) {
      const line = extractProtocolMessage(concat(this.yields));
      if (line !== "") {
        const m = INFO.exec(line);
        try {
          if (!m) throw new Error("unexpected response from server");
          this.info.resolve(JSON.parse(m[1]!) as ServerInfo);
        } catch (err) {
          this.info.reject(err);
        }
      }
      return;
    }
    this.signal.resolve();
  }

  private onSocketClosed(): void {
    this.sentAll();
    if (!this.connected) {
      this.info?.reject(this.socketError ?? new errors.ConnectionError("connection closed"));
      return;
    }
    void this.closeWith(this.socketError, false);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.delegate ? this.delegate[Symbol.asyncIterator]() : this.iterate();
  }

  private async *iterate(): AsyncIterableIterator<Uint8Array> {
    let turnStartedAt = performance.now();
    while (true) {
      if (this.yields.length === 0) {
        await this.signal;
        turnStartedAt = performance.now();
      }
      const chunks = this.yields;
      this.yields = [];
      for (const chunk of chunks) {
        for (let at = 0; at < chunk.byteLength; at += READ_SLICE_BYTES) {
          if (performance.now() - turnStartedAt >= READ_TURN_BUDGET_MS) {
            await nextTurn();
            turnStartedAt = performance.now();
          }
          yield chunk.byteLength <= READ_SLICE_BYTES ? chunk : chunk.subarray(at, at + READ_SLICE_BYTES);
        }
      }
      if (this.done) break;
      if (this.yields.length === 0) this.signal = deferred();
    }
  }

  isEncrypted(): boolean {
    return this.delegate?.isEncrypted() ?? false;
  }

  send(frame: Uint8Array): void {
    if (this.delegate) {
      this.delegate.send(frame);
      return;
    }
    if (this.done || !this.socket) return;
    if (this.unsent.length > 0) {
      this.unsent.push(frame);
      return;
    }
    const written = this.socket.write(frame);
    if (written < frame.byteLength) this.unsent.push(frame.subarray(Math.max(0, written)));
  }

  private writeUnsent(): void {
    const socket = this.socket;
    if (!socket) return;
    while (this.unsent.length > 0) {
      const next = this.unsent[0]!;
      const written = socket.write(next);
      if (written < next.byteLength) {
        this.unsent[0] = next.subarray(Math.max(0, written));
        return;
      }
      this.unsent.shift();
    }
    this.sentAll();
  }

  private sentAll(): void {
    const done = this.allSent;
    this.allSent = undefined;
    done?.();
  }

  close(err?: Error): Promise<void> {
    if (this.delegate) return this.delegate.close(err);
    return this.closeWith(err, false);
  }

  disconnect(): void {
    if (this.delegate) {
      this.delegate.disconnect();
      return;
    }
    void this.closeWith(undefined, true);
  }

  closed(): Promise<void | Error> {
    return this.delegate ? this.delegate.closed() : this.closedNotification;
  }

  discard(): void {
    if (this.delegate) {
      this.delegate.discard();
      return;
    }
    this.done = true;
    this.discardSocket();
    this.signal.resolve();
  }

  /** `internal`: the client asked to close (the kernel still sends what it holds); otherwise the socket went. */
  private async closeWith(err: Error | undefined, internal: boolean): Promise<void> {
    if (!this.connected || this.done) {
      this.discardSocket();
      return;
    }
    this.closeError = err;
    this.done = true;
    const socket = this.socket;
    if (socket && !err && internal) {
      // As NodeTransport does: what the client already handed over is written before the socket ends
      // (a reconnect asked for by the client loses nothing it published).
      if (this.unsent.length > 0) await new Promise<void>((resolve) => (this.allSent = resolve));
      socket.end();
    } else socket?.terminate();
    this.socket = undefined;
    this.unsent = [];
    this.signal.resolve();
    this.closedNotification.resolve(this.closeError);
  }

  private discardSocket(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.terminate();
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks);
}

/** Connects the NATS client over BunTransport (see above); otherwise the same as transport-node's `connect`. */
export function connectNats(opts: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new BunTransport(), dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(opts);
}
