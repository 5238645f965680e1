/**
 * Event streams over HTTP/2 for tests and benchmarks: a `node:http2` client session (one TLS connection,
 * ALPN `h2`) carrying many SSE requests, each read through the project's spec-faithful `SseParser`.
 *
 *   const session = await openH2Session(url, ca);
 *   const s = openH2Sse(session, `/matches/${match}/events`);
 *   await s.until(() => s.events.length >= 2);
 *
 * `keepEvents: false` keeps no event objects (for thousands of streams): pass `onEvent` to count them.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import { SseParser, type SseEvent } from "../../src/sse/parse.ts";

const DEFAULT_TIMEOUT_MS = 10_000;
const UNTIL_POLL_MS = 10;

/** Connects and waits for the server's SETTINGS (so `remoteSettings` and `alpnProtocol` are known). */
export async function openH2Session(url: string, ca: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ClientHttp2Session> {
  const session = http2.connect(url, { ca });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no HTTP/2 SETTINGS from ${url} within ${timeoutMs} ms`)), timeoutMs);
    session.once("remoteSettings", () => {
      clearTimeout(timer);
      resolve();
    });
    session.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  // A session torn down under a test reports through its streams; do not let it crash the process.
  session.on("error", () => {});
  return session;
}

export interface H2SseOptions {
  headers?: Record<string, string>;
  /** Keep every event in `events` (default true). */
  keepEvents?: boolean;
  onEvent?: (event: SseEvent) => void;
}

export class H2Sse {
  readonly events: SseEvent[] = [];
  /** Every `retry:` value seen. */
  readonly retries: number[] = [];
  headers: IncomingHttpHeaders | undefined;
  status = 0;
  /** The server ended the stream cleanly (END_STREAM). */
  ended = false;
  /** The stream is gone, for whatever reason; `rstCode` says which when it was reset. */
  closed = false;
  rstCode: number | undefined;
  error: Error | undefined;
  bytes = 0;
  readonly request: ClientHttp2Stream;
  private readonly parser: SseParser;
  private readonly decoder = new TextDecoder();

  constructor(session: ClientHttp2Session, path: string, opts: H2SseOptions = {}) {
    const keep = opts.keepEvents !== false;
    this.parser = new SseParser({
      onEvent: (event) => {
        if (keep) this.events.push(event);
        opts.onEvent?.(event);
      },
      onRetry: (ms) => void this.retries.push(ms),
    });
    this.request = session.request({ ":path": path, accept: "text/event-stream", ...opts.headers });
    this.request.on("response", (headers) => {
      this.headers = headers;
      this.status = Number(headers[":status"]);
    });
    this.request.on("data", (chunk: Buffer) => {
      this.bytes += chunk.byteLength;
      this.parser.feed(this.decoder.decode(chunk, { stream: true }));
    });
    this.request.on("end", () => void (this.ended = true));
    this.request.on("error", (err) => void (this.error = err));
    this.request.on("close", () => {
      this.closed = true;
      this.rstCode = this.request.rstCode;
    });
  }

  /** Resolves once `check()` holds; throws after `timeoutMs` saying what was asked for. */
  async until(check: () => boolean, timeoutMs = DEFAULT_TIMEOUT_MS, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) {
        throw new Error(
          `HTTP/2 stream: timed out waiting for ${what} (status ${this.status}, ${this.events.length} events, closed ${this.closed}, rst ${this.rstCode})`,
        );
      }
      await Bun.sleep(UNTIL_POLL_MS);
    }
  }

  /** Resets the stream from the client side (RST_STREAM CANCEL), as a browser closing an EventSource does. */
  cancel(): void {
    this.request.close(http2.constants.NGHTTP2_CANCEL);
  }
}

export function openH2Sse(session: ClientHttp2Session, path: string, opts?: H2SseOptions): H2Sse {
  return new H2Sse(session, path, opts);
}
