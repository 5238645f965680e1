/**
 * A lean HTTP/1.1 client for publish load: raw TCP connections (`Bun.connect`) kept alive, one
 * request in flight per connection, answers read by their Content-Length. Used instead of `fetch`
 * so the publisher's own CPU per request stays small next to the server's: at tens of thousands of
 * requests a second a fetch-based publisher on the one generator core would set the pace itself.
 */
import type { Socket } from "bun";

const CR = 0x0d;
const LF = 0x0a;
const HEAD_END = new Uint8Array([CR, LF, CR, LF]);
const MAX_HEAD_BYTES = 16 * 1024;
const CONNECT_TIMEOUT_MS = 5_000;
const utf8 = new TextDecoder();
const encoder = new TextEncoder();

export interface HttpAnswer {
  status: number;
  body: string;
}

interface Pending {
  resolve(answer: HttpAnswer): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One keep-alive connection; `request` may be called again once the previous answer arrived. */
export class KeepAliveConnection {
  private socket: Socket<KeepAliveConnection> | null = null;
  private pending: Pending | null = null;
  private buffer: Uint8Array = new Uint8Array(0);
  private status = 0;
  /** Body length once the head is read; -1 while reading the head. */
  private bodyLength = -1;
  private bodyStart = 0;
  private closeAfter = false;
  private broken: Error | null = null;

  private constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  static async open(host: string, port: number): Promise<KeepAliveConnection> {
    const connection = new KeepAliveConnection(host, port);
    await connection.connect();
    return connection;
  }

  /**
   * Sends one request (`POST`/`GET` with a JSON body or none) and resolves with the whole answer.
   * `authorization`: the value of an Authorization header to send with it.
   */
  async request(method: string, path: string, body: string | null, timeoutMs: number, authorization?: string): Promise<HttpAnswer> {
    if (this.pending !== null) throw new Error("a request is already in flight on this connection");
    if (this.socket === null || this.broken !== null) await this.connect();
    const bytes = body === null ? null : encoder.encode(body);
    const head =
      `${method} ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n` +
      (authorization === undefined ? "" : `Authorization: ${authorization}\r\n`) +
      (bytes === null ? "" : `Content-Type: application/json\r\nContent-Length: ${bytes.length}\r\n`) +
      "\r\n";
    return new Promise<HttpAnswer>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)), timeoutMs);
      this.pending = { resolve, reject, timer };
      const socket = this.socket as Socket<KeepAliveConnection>;
      if (bytes === null) socket.write(head);
      else {
        const message = new Uint8Array(head.length + bytes.length);
        message.set(encoder.encode(head), 0);
        message.set(bytes, head.length);
        socket.write(message);
      }
    });
  }

  close(): void {
    this.socket?.end();
    this.socket = null;
  }

  private connect(): Promise<void> {
    this.broken = null;
    this.buffer = new Uint8Array(0);
    this.bodyLength = -1;
    this.closeAfter = false;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connect ${this.host}:${this.port} timed out`)), CONNECT_TIMEOUT_MS);
      Bun.connect<KeepAliveConnection>({
        hostname: this.host,
        port: this.port,
        data: this,
        socket: {
          binaryType: "uint8array",
          open: (socket) => {
            clearTimeout(timer);
            this.socket = socket;
            resolve();
          },
          data: (_socket, bytes) => this.onData(bytes),
          close: () => this.onClosed(),
          end: () => this.onClosed(),
          error: (_socket, error) => this.fail(error),
          connectError: (_socket, error) => {
            clearTimeout(timer);
            reject(error);
          },
        },
      }).catch((error: Error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  private onData(bytes: Uint8Array): void {
    this.buffer = this.buffer.length === 0 ? bytes.slice() : concat(this.buffer, bytes);
    if (this.bodyLength < 0) {
      const end = indexOf(this.buffer, HEAD_END);
      if (end === -1) {
        if (this.buffer.length > MAX_HEAD_BYTES) this.fail(new Error("answer head too large"));
        return;
      }
      const lines = utf8.decode(this.buffer.subarray(0, end)).split("\r\n");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
      let length = -1;
      for (const line of lines) {
        const lower = line.toLowerCase();
        if (lower.startsWith("content-length:")) length = Number(line.slice(line.indexOf(":") + 1).trim());
        else if (lower.startsWith("connection:") && lower.includes("close")) this.closeAfter = true;
      }
      if (status === null || !(length >= 0)) {
        this.fail(new Error(`answer without status or Content-Length: ${lines[0]}`));
        return;
      }
      this.status = Number(status[1]);
      this.bodyLength = length;
      this.bodyStart = end + HEAD_END.length;
    }
    if (this.buffer.length < this.bodyStart + this.bodyLength) return;
    const body = utf8.decode(this.buffer.subarray(this.bodyStart, this.bodyStart + this.bodyLength));
    const answer = { status: this.status, body };
    this.buffer = new Uint8Array(0);
    this.bodyLength = -1;
    if (this.closeAfter) this.close();
    const pending = this.pending;
    this.pending = null;
    if (pending !== null) {
      clearTimeout(pending.timer);
      pending.resolve(answer);
    }
  }

  private onClosed(): void {
    this.socket = null;
    if (this.pending !== null) this.fail(new Error("connection closed before the answer"));
  }

  private fail(error: Error): void {
    this.broken = error;
    this.socket?.end();
    this.socket = null;
    const pending = this.pending;
    this.pending = null;
    if (pending !== null) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a, 0);
  joined.set(b, a.length);
  return joined;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  const last = haystack.length - needle.length;
  outer: for (let i = 0; i <= last; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
