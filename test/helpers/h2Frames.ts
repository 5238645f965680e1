/**
 * A bare HTTP/2 client speaking frames over one TLS connection (ALPN `h2`), for what `node:http2` does
 * not let a test control or costs too much at thousands of streams:
 *
 * - flow control by hand: the connection window, the initial stream window, and which streams get
 *   their WINDOW_UPDATEs back (a stream left without them is a client that stopped reading it);
 * - thousands of event streams per benchmark process: DATA payloads go straight to a per-stream
 *   callback, no stream objects, no HPACK decoding beyond the `:status` byte.
 *
 * Requests are GETs whose headers are sent as HPACK literals without indexing (no dynamic table on
 * our side); responses' header blocks are not decoded except for an indexed `:status` (Bun sends
 * `:status: 200` as static index 8), which is all the callers need.
 */
import { connect as tlsConnect, type TLSSocket } from "node:tls";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const FRAME_HEADER = 9;
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_ENABLE_PUSH = 0x2;
/** HPACK static table index 8: `:status: 200`. */
const STATUS_200_INDEXED = 0x88;
const MAX_WINDOW = 2 ** 31 - 1;

export interface H2StreamHandlers {
  onData?(payload: Uint8Array): void;
  /** The response's header block arrived; `ok` when it starts with the indexed `:status: 200`. */
  onHeaders?(ok: boolean): void;
  onEnd?(): void;
  onReset?(code: number): void;
}

export interface RawH2Options {
  host?: string;
  port: number;
  ca: string;
  /** SETTINGS_INITIAL_WINDOW_SIZE we announce for our receiving side of each stream (default 65,535). */
  streamWindow?: number;
  /** Extra connection window granted at once (WINDOW_UPDATE on stream 0); the connection keeps it topped up. */
  connectionWindow?: number;
}

interface StreamState {
  handlers: H2StreamHandlers;
  /** Bytes received since our last WINDOW_UPDATE for the stream. */
  unacked: number;
  /** While false, the stream gets no WINDOW_UPDATE (a client that stopped reading it). */
  reading: boolean;
}

function frame(type: number, flags: number, stream: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(FRAME_HEADER + payload.byteLength);
  b.writeUIntBE(payload.byteLength, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream & MAX_WINDOW, 5);
  b.set(payload, FRAME_HEADER);
  return b;
}

function windowUpdate(stream: number, increment: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(increment & MAX_WINDOW, 0);
  return frame(FRAME.WINDOW_UPDATE, 0, stream, p);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 5.1), the prefix byte's upper bits in `first`. */
function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** Literal header field without indexing, new name (RFC 7541 6.2.2), no Huffman coding. */
function hpackLiteral(name: string, value: string): number[] {
  const n = Buffer.from(name, "latin1");
  const v = Buffer.from(value, "latin1");
  return [0x00, ...hpackInt(n.length, 7, 0), ...n, ...hpackInt(v.length, 7, 0), ...v];
}

export class RawH2Connection {
  readonly socket: TLSSocket;
  private readonly streams = new Map<number, StreamState>();
  private nextStreamId = 1;
  private buffer: Buffer = Buffer.alloc(0);
  private connectionUnacked = 0;
  private readonly streamWindow: number;
  private pendingWrites: Buffer[] = [];
  private flushQueued = false;
  /** Set when the server sent GOAWAY: its error code. */
  goaway: number | undefined;
  closed = false;
  /** The socket's error, if it closed on one. */
  error: string | undefined;
  /** Bytes (after TLS) received from the server, and whether its SETTINGS came. */
  received = 0;
  settingsReceived = false;
  alpn: string | false = false;

  private constructor(socket: TLSSocket, streamWindow: number) {
    this.socket = socket;
    this.streamWindow = streamWindow;
  }

  static async connect(opts: RawH2Options): Promise<RawH2Connection> {
    const socket = tlsConnect({ host: opts.host ?? "127.0.0.1", port: opts.port, ca: opts.ca, servername: "localhost", ALPNProtocols: ["h2"] });
    const conn = new RawH2Connection(socket, opts.streamWindow ?? 65_535);
    await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
    conn.alpn = socket.alpnProtocol ?? false;
    if (conn.alpn !== "h2") throw new Error(`server did not agree to h2 (ALPN ${String(conn.alpn)})`);
    socket.on("data", (b: Buffer) => conn.receive(b));
    socket.on("close", () => void (conn.closed = true));
    socket.on("error", (err) => {
      conn.error = err.message;
      conn.closed = true;
    });
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(SETTINGS_ENABLE_PUSH, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 6);
    settings.writeUInt32BE(conn.streamWindow, 8);
    const opening = [PREFACE, frame(FRAME.SETTINGS, 0, 0, settings)];
    if (opts.connectionWindow) opening.push(windowUpdate(0, Math.min(MAX_WINDOW - 65_535, opts.connectionWindow)));
    socket.write(Buffer.concat(opening));
    return conn;
  }

  /** Opens a GET stream; returns its id. */
  get(path: string, handlers: H2StreamHandlers, headers: Record<string, string> = {}): number {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const block: number[] = [
      ...hpackLiteral(":method", "GET"),
      ...hpackLiteral(":scheme", "https"),
      ...hpackLiteral(":authority", "localhost"),
      ...hpackLiteral(":path", path),
      ...hpackLiteral("accept", "text/event-stream"),
    ];
    for (const [k, v] of Object.entries(headers)) block.push(...hpackLiteral(k.toLowerCase(), v));
    this.streams.set(id, { handlers, unacked: 0, reading: true });
    this.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, Uint8Array.from(block)));
    return id;
  }

  /** Stop or restart returning flow-control credit for a stream (stop = the client stopped reading it). */
  setReading(id: number, reading: boolean): void {
    const s = this.streams.get(id);
    if (!s) return;
    s.reading = reading;
    if (reading && s.unacked > 0) {
      this.write(windowUpdate(id, s.unacked));
      s.unacked = 0;
    }
  }

  /** Resets one stream (RST_STREAM CANCEL), as a browser closing an EventSource does. */
  cancel(id: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(0x8, 0);
    this.write(frame(FRAME.RST_STREAM, 0, id, p));
    this.streams.delete(id);
  }

  get openStreams(): number {
    return this.streams.size;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Frames written in one turn go out in one TLS write. */
  private write(b: Buffer): void {
    this.pendingWrites.push(b);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      const out = this.pendingWrites.length === 1 ? this.pendingWrites[0]! : Buffer.concat(this.pendingWrites);
      this.pendingWrites = [];
      if (!this.socket.destroyed) this.socket.write(out);
    });
  }

  private receive(chunk: Buffer): void {
    this.received += chunk.length;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let off = 0;
    while (this.buffer.length - off >= FRAME_HEADER) {
      const len = this.buffer.readUIntBE(off, 3);
      if (this.buffer.length - off < FRAME_HEADER + len) break;
      const type = this.buffer[off + 3]!;
      const flags = this.buffer[off + 4]!;
      const id = this.buffer.readUInt32BE(off + 5) & MAX_WINDOW;
      const payload = this.buffer.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len);
      off += FRAME_HEADER + len;
      this.onFrame(type, flags, id, payload);
    }
    this.buffer = off === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(off);
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    switch (type) {
      case FRAME.DATA: {
        // Connection credit goes back as soon as data arrives; stream credit only while the stream is read.
        this.connectionUnacked += payload.length;
        if (this.connectionUnacked >= 16_384) {
          this.write(windowUpdate(0, this.connectionUnacked));
          this.connectionUnacked = 0;
        }
        const s = this.streams.get(id);
        if (!s) return;
        let data: Uint8Array = payload;
        if (flags & FLAG.PADDED) data = payload.subarray(1, payload.length - payload[0]!);
        if (data.length > 0) s.handlers.onData?.(data);
        s.unacked += payload.length;
        if (s.reading && s.unacked >= this.streamWindow / 4) {
          this.write(windowUpdate(id, s.unacked));
          s.unacked = 0;
        }
        if (flags & FLAG.END_STREAM) {
          this.streams.delete(id);
          s.handlers.onEnd?.();
        }
        return;
      }
      case FRAME.HEADERS: {
        const s = this.streams.get(id);
        if (!s) return;
        let block = payload;
        if (flags & FLAG.PADDED) block = block.subarray(1, block.length - block[0]!);
        if (flags & FLAG.PRIORITY) block = block.subarray(5);
        s.handlers.onHeaders?.(block[0] === STATUS_200_INDEXED);
        if (flags & FLAG.END_STREAM) {
          this.streams.delete(id);
          s.handlers.onEnd?.();
        }
        return;
      }
      case FRAME.RST_STREAM: {
        const s = this.streams.get(id);
        this.streams.delete(id);
        s?.handlers.onReset?.(payload.readUInt32BE(0));
        return;
      }
      case FRAME.SETTINGS:
        this.settingsReceived = true;
        if (!(flags & FLAG.ACK)) this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        return;
      case FRAME.PING:
        if (!(flags & FLAG.ACK)) this.write(frame(FRAME.PING, FLAG.ACK, 0, payload));
        return;
      case FRAME.GOAWAY:
        this.goaway = payload.readUInt32BE(4);
        return;
      default:
        return;
    }
  }
}
