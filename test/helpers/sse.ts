/**
 * A small SSE reader for integration tests, over a raw TCP socket (Bun.connect) so that it can hold
 * thousands of streams (fetch pools connections per host) and can stop reading to play a slow client.
 *
 * It speaks just enough HTTP/1.1: one GET, the response head, then a chunked, length-delimited or
 * until-close body. The body of a 200 `text/event-stream` answer goes through the project's spec-faithful
 * `SseParser`; any other answer's body is kept as text (the contract's JSON errors).
 */
import type { Socket } from "bun";
import { SseParser, type SseEvent } from "../../src/sse/parse.ts";

export interface ReceivedEvent extends SseEvent {
  /** Date.now() when the event was dispatched here. */
  receivedAt: number;
}

export interface OpenOptions {
  /** Request headers; `accept` defaults to `text/event-stream` (pass `null` to send none). */
  headers?: Record<string, string | null>;
  /** Wait for the response head before resolving (default true). A stalled client passes false. */
  waitForHead?: boolean;
  /** Stop reading right after sending the request: the server sees TCP backpressure. */
  paused?: boolean;
  /** How long to wait for the response head (ms). */
  headTimeoutMs?: number;
}

const CRLF = "\r\n";
const HEAD_END = Buffer.from("\r\n\r\n");
/** Characters of the event-stream body kept verbatim, to check what comes first on the wire. */
const KEPT_BODY_CHARS = 4096;
const DEFAULT_HEAD_TIMEOUT_MS = 10_000;
/** How often until() re-checks a condition between reads. */
const UNTIL_POLL_MS = 20;
/** How long close() waits for the server to close after our FIN before dropping the socket. */
const CLOSE_GRACE_MS = 50;

type BodyMode = { kind: "chunked" } | { kind: "length"; remaining: number } | { kind: "until-close" };

/** Incremental decoder of an HTTP/1.1 chunked body. */
class ChunkedDecoder {
  private buffer: Buffer = Buffer.alloc(0);
  /** Bytes left in the chunk being read; -1 while reading a size line. */
  private remaining = -1;
  /** A chunk's data ended: its trailing CRLF is still to be skipped. */
  private skipCrlf = false;
  done = false;

  constructor(private readonly onData: (bytes: Uint8Array) => void) {}

  push(bytes: Uint8Array): void {
    this.buffer = this.buffer.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.buffer, bytes]);
    for (;;) {
      if (this.done) return;
      if (this.skipCrlf) {
        if (this.buffer.length < 2) return;
        this.buffer = this.buffer.subarray(2);
        this.skipCrlf = false;
      }
      if (this.remaining === -1) {
        const lineEnd = this.buffer.indexOf(CRLF);
        if (lineEnd === -1) return;
        const size = parseInt(this.buffer.subarray(0, lineEnd).toString("latin1").split(";")[0]!.trim(), 16);
        this.buffer = this.buffer.subarray(lineEnd + 2);
        if (!Number.isFinite(size)) throw new Error("bad chunk size line");
        if (size === 0) {
          this.done = true;
          return;
        }
        this.remaining = size;
      }
      if (this.buffer.length === 0) return;
      const take = Math.min(this.remaining, this.buffer.length);
      this.onData(this.buffer.subarray(0, take));
      this.buffer = this.buffer.subarray(take);
      this.remaining -= take;
      if (this.remaining > 0) return;
      this.remaining = -1;
      this.skipCrlf = true;
    }
  }
}

/** One HTTP GET whose answer is read as it arrives. */
export class SseConnection {
  status = 0;
  headers = new Headers();
  readonly events: ReceivedEvent[] = [];
  readonly comments: string[] = [];
  /** Times (Date.now()) at which each comment arrived. */
  readonly commentTimes: number[] = [];
  readonly retries: number[] = [];
  /** The first characters of an event-stream body, verbatim. */
  bodyStart = "";
  /** The whole body of an answer that is not an event stream (an error's JSON). */
  body = "";
  /** Bytes of response body received (after de-chunking). */
  bodyBytes = 0;
  isEnded = false;
  readonly ended: Promise<void>;
  readonly headReceived: Promise<void>;
  /** Called for each event as it is dispatched (latency measurements). */
  onEvent: ((e: ReceivedEvent) => void) | undefined;

  private socket: Socket<undefined> | undefined;
  private head: Buffer = Buffer.alloc(0);
  private mode: BodyMode | undefined;
  private chunked: ChunkedDecoder | undefined;
  private readonly parser: SseParser;
  private readonly decoder = new TextDecoder();
  private isEventStream = false;
  private waiters = new Set<() => void>();
  private resolveEnded!: () => void;
  private resolveHead!: () => void;
  private rejectHead!: (e: Error) => void;

  constructor() {
    this.ended = new Promise((r) => (this.resolveEnded = r));
    this.headReceived = new Promise((resolve, reject) => {
      this.resolveHead = resolve;
      this.rejectHead = reject;
    });
    this.headReceived.catch(() => {});
    this.parser = new SseParser({
      onEvent: (e) => {
        const received = { ...e, receivedAt: Date.now() };
        this.events.push(received);
        this.onEvent?.(received);
      },
      onComment: (text) => {
        this.comments.push(text);
        this.commentTimes.push(Date.now());
      },
      onRetry: (ms) => this.retries.push(ms),
    });
  }

  /** The id the spec would send as Last-Event-ID on reconnect. */
  get lastEventId(): string {
    return this.parser.lastEventId;
  }

  attach(socket: Socket<undefined>): void {
    this.socket = socket;
  }

  onBytes(bytes: Uint8Array): void {
    if (this.mode === undefined) {
      this.head = Buffer.concat([this.head, bytes]);
      const end = this.head.indexOf(HEAD_END);
      if (end === -1) return;
      const rest = this.head.subarray(end + HEAD_END.length);
      this.parseHead(this.head.subarray(0, end).toString("latin1"));
      this.head = Buffer.alloc(0);
      this.resolveHead();
      if (rest.length > 0) this.onBodyBytes(rest);
    } else {
      this.onBodyBytes(bytes);
    }
    this.notify();
  }

  onClose(): void {
    if (this.isEnded) return;
    this.isEnded = true;
    if (this.mode === undefined) this.rejectHead(new Error("connection closed before the response head"));
    this.resolveEnded();
    this.notify();
  }

  private parseHead(text: string): void {
    const [statusLine = "", ...lines] = text.split(CRLF);
    this.status = Number(statusLine.split(" ")[1]);
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) this.headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    this.isEventStream = this.status === 200 && (this.headers.get("content-type") ?? "").startsWith("text/event-stream");
    if ((this.headers.get("transfer-encoding") ?? "").toLowerCase().includes("chunked")) {
      this.mode = { kind: "chunked" };
      this.chunked = new ChunkedDecoder((b) => this.onPayload(b));
    } else if (this.headers.has("content-length")) {
      this.mode = { kind: "length", remaining: Number(this.headers.get("content-length")) };
    } else {
      this.mode = { kind: "until-close" };
    }
  }

  private onBodyBytes(bytes: Uint8Array): void {
    const mode = this.mode!;
    if (mode.kind === "chunked") {
      this.chunked!.push(bytes);
      if (this.chunked!.done) this.finish();
    } else if (mode.kind === "length") {
      const take = bytes.subarray(0, mode.remaining);
      mode.remaining -= take.byteLength;
      this.onPayload(take);
      if (mode.remaining === 0) this.finish();
    } else {
      this.onPayload(bytes);
    }
  }

  private onPayload(bytes: Uint8Array): void {
    this.bodyBytes += bytes.byteLength;
    const text = this.decoder.decode(bytes, { stream: true });
    if (!this.isEventStream) {
      this.body += text;
      return;
    }
    if (this.bodyStart.length < KEPT_BODY_CHARS) this.bodyStart += text.slice(0, KEPT_BODY_CHARS - this.bodyStart.length);
    this.parser.feed(text);
  }

  /** The response is complete: this reader sends one request per connection, so it hangs up. */
  private finish(): void {
    this.socket?.end();
    this.onClose();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Resolves once `check()` holds; rejects after `timeoutMs`. Checked after every read and at the end,
   * and every few milliseconds too, for conditions that depend on more than this connection.
   */
  until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        if (!check()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (have ${this.events.length} events, ended=${this.isEnded})`));
      }, timeoutMs);
      const poller = setInterval(waiter, UNTIL_POLL_MS);
      const cleanup = (): void => {
        clearTimeout(timer);
        clearInterval(poller);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
    });
  }

  /** Waits until at least `count` events (of any type) have arrived. */
  untilEvents(count: number, timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.events.length >= count, timeoutMs, `${count} events`);
  }

  /** Events other than `snapshot`. */
  get matchEvents(): ReceivedEvent[] {
    return this.events.filter((e) => e.type !== "snapshot");
  }

  get snapshots(): ReceivedEvent[] {
    return this.events.filter((e) => e.type === "snapshot");
  }

  /** Stops reading: the kernel buffers fill and the server sees backpressure. */
  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  /** Vanishes without a goodbye (the socket is destroyed), as a client whose network dropped. */
  destroy(): void {
    this.socket?.terminate();
    this.onClose();
  }

  /**
   * Hangs up politely (FIN), then closes the socket for good as a browser does: a server may keep
   * writing to a half-closed socket, so the reader does not wait for the server to answer the FIN.
   */
  async close(): Promise<void> {
    if (!this.isEnded) this.socket?.end();
    await Promise.race([this.ended, Bun.sleep(CLOSE_GRACE_MS)]);
    if (!this.isEnded) this.destroy();
  }
}

/** Opens `GET url` on a raw socket and reads the answer as it arrives. */
export async function openSse(url: string, opts: OpenOptions = {}): Promise<SseConnection> {
  const u = new URL(url);
  const headers: Record<string, string | null> = { accept: "text/event-stream", ...opts.headers };
  let request = `GET ${u.pathname}${u.search} HTTP/1.1${CRLF}Host: ${u.host}${CRLF}`;
  for (const [name, value] of Object.entries(headers)) if (value !== null) request += `${name}: ${value}${CRLF}`;
  request += CRLF;
  const conn = await sendRaw(url, [request], { paused: opts.paused });
  if (opts.waitForHead !== false) await untilHead(conn, url, opts.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS);
  return conn;
}

/**
 * Sends a hand-written request (for what fetch will not send: a chunked body of a chosen size, a
 * malformed request) and reads the answer with the same reader. Parts are written in order.
 */
export async function sendRaw(url: string, parts: (string | Uint8Array)[], opts: { paused?: boolean } = {}): Promise<SseConnection> {
  const u = new URL(url);
  const conn = new SseConnection();
  const socket = await Bun.connect({
    hostname: u.hostname,
    port: Number(u.port),
    socket: {
      data: (_s, bytes) => conn.onBytes(bytes),
      close: () => conn.onClose(),
      end: () => conn.onClose(),
      error: () => conn.onClose(),
      connectError: () => conn.onClose(),
    },
  });
  conn.attach(socket);
  for (const part of parts) {
    // A large part may not fit in the socket buffer at once: write the rest as it drains.
    let rest = typeof part === "string" ? Buffer.from(part) : part;
    while (rest.byteLength > 0 && !conn.isEnded) {
      const written = socket.write(rest);
      if (written < 0) break;
      rest = rest.subarray(written);
      if (rest.byteLength > 0) await Bun.sleep(1);
    }
  }
  if (opts.paused) socket.pause();
  return conn;
}

/** Resolves once the response head is in; rejects after `timeoutMs`. */
export async function untilHead(conn: SseConnection, what: string, timeoutMs = DEFAULT_HEAD_TIMEOUT_MS): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    conn.headReceived,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no response head from ${what} within ${timeoutMs} ms`)), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
}

/** Parses the JSON `data` of an event. */
export function dataOf<T = Record<string, unknown>>(e: SseEvent): T {
  return JSON.parse(e.data) as T;
}
