/**
 * StreamRegistry: every open client stream of this node. It enforces MAX_CONNECTIONS, sends heartbeats
 * from one sweep (no timer per stream), judges slow clients (one watch for all), and closes everything
 * on drain.
 */
import { encodeRetry } from "../sse/encode.ts";
import { FlushScheduler } from "./flushScheduler.ts";
import { SseStream, type CloseReason, type SseStreamOwner } from "./sseStream.ts";
import { SlowClientWatch, type SlowCut } from "./slowClientWatch.ts";

const HEARTBEAT_SWEEP_MIN_MS = 50;
/** Distinct jittered `retry:` values handed out; their frames are encoded once and shared. */
const RETRY_JITTER_STEPS = 64;

export interface RegistryOptions {
  maxConnections: number;
  heartbeatMs: number;
  /** CLIENT_BUFFER_BYTES. */
  bufferCap: number;
  /** Unsent bytes at which a stream is cut at once. */
  bufferCeiling: number;
  /** SLOW_CLIENT_GRACE: how long a stream may stay over bufferCap before it is cut. */
  slowGraceMs: number;
  retryMs: number;
  onOpened(): void;
  onClosed(reason: CloseReason): void;
  /** A stream is being cut as slow (its close, reason "slow", follows). */
  onSlowCut(cut: SlowCut): void;
}

export const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
  Connection: "keep-alive",
} as const;

export class StreamRegistry implements SseStreamOwner {
  private readonly streams = new Set<SseStream>();
  private readonly sweepTimer: ReturnType<typeof setInterval>;
  private readonly retryFrames: Uint8Array[];
  readonly bufferCap: number;
  readonly flusher = new FlushScheduler();
  readonly slowClients: SlowClientWatch;

  constructor(private readonly opts: RegistryOptions) {
    this.bufferCap = opts.bufferCap;
    this.slowClients = new SlowClientWatch(
      { capBytes: opts.bufferCap, ceilingBytes: opts.bufferCeiling, graceMs: opts.slowGraceMs },
      (cut) => opts.onSlowCut(cut),
    );
    // ±50% jitter so that a node dying does not make all its clients come back in the same instant.
    const utf8 = new TextEncoder();
    this.retryFrames = Array.from({ length: RETRY_JITTER_STEPS }, (_, i) =>
      utf8.encode(encodeRetry(Math.round(opts.retryMs * (0.5 + i / (RETRY_JITTER_STEPS - 1))))),
    );
    const every = Math.max(HEARTBEAT_SWEEP_MIN_MS, Math.floor(opts.heartbeatMs / 4));
    this.sweepTimer = setInterval(() => this.heartbeat(), every);
  }

  get size(): number {
    return this.streams.size;
  }

  get full(): boolean {
    return this.streams.size >= this.opts.maxConnections;
  }

  /** Opens a stream; the caller attaches what it holds with `stream.holdFor`. */
  open(): SseStream {
    const retry = this.retryFrames[Math.floor(Math.random() * RETRY_JITTER_STEPS)]!;
    const stream = new SseStream(this, SSE_HEADERS, retry);
    this.streams.add(stream);
    this.opts.onOpened();
    return stream;
  }

  streamClosed(stream: SseStream, reason: CloseReason): void {
    if (!this.streams.delete(stream)) return;
    this.opts.onClosed(reason);
  }

  private heartbeat(): void {
    const due = Date.now() - this.opts.heartbeatMs;
    for (const s of this.streams) if (s.lastWriteAt <= due) s.ping();
  }

  /** Closes every stream so clients reconnect elsewhere at once (SIGTERM). */
  closeAll(reason: CloseReason): void {
    for (const s of [...this.streams]) s.close(reason);
  }

  stop(): void {
    clearInterval(this.sweepTimer);
    this.slowClients.stop();
  }
}
