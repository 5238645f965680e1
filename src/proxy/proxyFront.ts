/**
 * ProxyFront: the node's public port when PROXY_PROTOCOL is on. `Bun.serve` cannot read a PROXY header,
 * so this front accepts each connection, reads the header the L4 balancer put first, and splices the
 * rest (TLS or plain HTTP, untouched) to the node's HTTP server listening on loopback. It remembers which
 * client each of its loopback connections carries, by that connection's local port: the HTTP server sees
 * the port as the request's peer port, so `sourceOf(port)` names the client behind any request.
 *
 * The header is honoured only from a trusted balancer (TRUST_PROXY); from anyone else it is a forgery and
 * the connection is closed, as it is when the header is broken or incomplete after the timeout. A
 * connection that starts without one (a health check, a Prometheus scrape, a client bypassing the
 * balancer) is served as its own client: its socket peer is its address, as without this front.
 */
import type { ProxyRefusal } from "../telemetry/metricLabels.ts";
import type { Socket, TCPSocketListener } from "bun";
import { parseProxyHeader, type ProxySource } from "./proxyHeader.ts";
import { Splice, connectUpstream } from "../net/tcpSplice.ts";

export interface ProxyFrontOptions {
  hostname: string;
  port: number;
  /** The node's HTTP server, on loopback. */
  backend: { host: string; port: number };
  /** True for a peer allowed to send the header (TRUST_PROXY). */
  trusted: (peerAddress: string) => boolean;
  onRefused: (reason: ProxyRefusal, peerAddress: string, detail?: string) => void;
  /**
   * How long a connection may take to show how it starts (a header or not): the HTTP server's idle
   * timeout, since a browser's preconnected socket may rightly stay silent that long.
   */
  firstBytesTimeoutMs: number;
}

export interface ProxyFront {
  readonly port: number;
  /** The client a loopback connection from `port` carries, while that connection is open. */
  sourceOf(port: number): string | undefined;
  /** Connections being spliced now. */
  readonly size: number;
  /** Stops accepting; open splices end when the HTTP server closes its side (a drain), or now with `force`. */
  stop(force?: boolean): void;
}

const NOTHING = new Uint8Array(0);

/** One accepted connection: reading the header, then spliced. */
class FrontConnection {
  private head: Uint8Array = NOTHING;
  splice: Splice | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The header was read (or the connection refused): later bytes are the client's own. */
  done = false;
  /** Who the header named, and the local port of the loopback connection carrying it. */
  client: string | undefined;
  upstreamPort: number | undefined;

  constructor(readonly socket: Socket<FrontConnection>) {}

  /** Appends `chunk` to what came before the header was complete; the bytes so far. */
  gather(chunk: Uint8Array): Uint8Array {
    const joined = new Uint8Array(this.head.length + chunk.length);
    joined.set(this.head);
    joined.set(chunk, this.head.length);
    this.head = joined;
    return joined;
  }

  /** The header is decided: what was gathered has been handed on, so it is not kept for the connection's life. */
  dropHead(): void {
    this.head = NOTHING;
  }
}

export function startProxyFront(opts: ProxyFrontOptions): ProxyFront {
  /** Loopback connections to the HTTP server, by their local port. */
  const byUpstreamPort = new Map<number, FrontConnection>();
  const live = new Set<FrontConnection>();

  const refuse = (conn: FrontConnection, reason: ProxyRefusal, detail?: string): void => {
    conn.done = true;
    clearTimeout(conn.timer);
    forget(conn);
    opts.onRefused(reason, conn.socket.remoteAddress, detail);
    conn.socket.terminate();
  };

  const forget = (conn: FrontConnection): void => {
    live.delete(conn);
    if (conn.upstreamPort !== undefined && byUpstreamPort.get(conn.upstreamPort) === conn) byUpstreamPort.delete(conn.upstreamPort);
  };

  const begin = async (conn: FrontConnection, source: ProxySource | undefined, rest: Uint8Array): Promise<void> => {
    // No header, or LOCAL/UNKNOWN (the balancer speaking for itself): the peer is the client.
    conn.client = source?.address ?? conn.socket.remoteAddress;
    const splice = new Splice(conn.socket, () => forget(conn));
    conn.splice = splice;
    // Held (and the client paused) until the backend is connected.
    if (rest.length > 0) splice.fromClient(rest);
    const upstream = await connectUpstream(splice, opts.backend.host, opts.backend.port);
    if (!upstream) {
      refuse(conn, "backend_unreachable");
      return;
    }
    if (live.has(conn)) {
      // Known before attach() sends the first request byte, so no request arrives unattributed.
      conn.upstreamPort = upstream.localPort;
      byUpstreamPort.set(conn.upstreamPort, conn);
    }
    // A client already gone: attach() ends the new connection at once.
    splice.attach(upstream);
  };

  const listener: TCPSocketListener<FrontConnection> = Bun.listen<FrontConnection>({
    hostname: opts.hostname,
    port: opts.port,
    socket: {
      binaryType: "uint8array",
      open(socket) {
        const conn = new FrontConnection(socket);
        socket.data = conn;
        live.add(conn);
        conn.timer = setTimeout(() => refuse(conn, "header_timeout"), opts.firstBytesTimeoutMs);
      },
      data(socket, chunk) {
        const conn = socket.data;
        if (conn.splice) {
          conn.splice.fromClient(chunk);
          return;
        }
        if (conn.done) return;
        const bytes = conn.gather(chunk);
        const verdict = parseProxyHeader(bytes);
        if (verdict.kind === "incomplete") return;
        if (verdict.kind === "invalid") {
          refuse(conn, "bad_header", verdict.reason);
          return;
        }
        if (verdict.kind === "header" && !opts.trusted(socket.remoteAddress)) {
          refuse(conn, "untrusted_peer");
          return;
        }
        conn.done = true;
        clearTimeout(conn.timer);
        conn.dropHead();
        if (verdict.kind === "absent") void begin(conn, undefined, bytes);
        else void begin(conn, verdict.source, bytes.subarray(verdict.length));
      },
      drain(socket) {
        socket.data.splice?.drained(socket);
      },
      close(socket) {
        const conn = socket.data;
        clearTimeout(conn.timer);
        forget(conn);
        conn.splice?.close();
      },
      error(socket) {
        socket.data.splice?.close();
      },
    },
  });

  return {
    port: listener.port,
    sourceOf: (port) => byUpstreamPort.get(port)?.client,
    get size() {
      return live.size;
    },
    stop(force = false) {
      listener.stop(force);
      if (!force) return;
      for (const conn of live) {
        clearTimeout(conn.timer);
        if (conn.splice) conn.splice.abort();
        else conn.socket.terminate();
      }
      live.clear();
      byUpstreamPort.clear();
    },
  };
}
