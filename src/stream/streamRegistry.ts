/**
 * StreamRegistry: every open client stream of this node. It enforces MAX_CONNECTIONS, sends heartbeats
 * from one sweep (no timer per stream), judges slow clients (one watch for all), and closes everything
 * on drain.
 */
import { encodeRetry } from "../sse/encode.ts";
import { SSE_HEADERS } from "../sse/headers.ts";
import { FlushScheduler } from "./flushScheduler.ts";
import { SseStream, type CloseReason, type SseStreamOwner } from "./sseStream.ts";
import { SlowClientWatch, type SlowCut } from "./slowClientWatch.ts";

const HEARTBEAT_SWEEP_MIN_MS = 50;
/** Longest gap between two sweeps, so rotation deadlines are kept even with a long heartbeat. */
const SWEEP_MAX_MS = 1000;
/**
 * A stream the node ends on purpose (drain, rotation) is sent `retry:` this short first, with up to as
 * much again of jitter: the client comes back at once, through the balancer, not in one instant.
 */
const QUICK_RETRY_MS = 250;
/** Rotation deadlines spread ±20% around MAX_STREAM_AGE, so streams opened together do not rotate together. */
const ROTATION_JITTER = 0.2;
/** Readiness by capacity: not ready from 95% of MAX_CONNECTIONS, ready again below 90%. */
const SATURATED_AT = 0.95;
const UNSATURATED_BELOW = 0.9;
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
  /** MAX_STREAM_AGE: streams older than this (±20%) are closed to resume elsewhere; Infinity for never. */
  maxStreamAgeMs: number;
  onOpened(): void;
  onClosed(reason: CloseReason): void;
  /** A stream is being cut as slow (its close, reason "slow", follows). */
  onSlowCut(cut: SlowCut): void;
}

/** A place held for one stream (`StreamRegistry.reserve`): opened once, or given back. */
export interface StreamPlace {
  /** Opens the stream in this place. */
  open(): SseStream;
  /** Gives the place back (nothing once opened; safe to call more than once). */
  release(): void;
}

export class StreamRegistry implements SseStreamOwner {
  private readonly streams = new Set<SseStream>();
  private readonly sweepTimer: ReturnType<typeof setInterval>;
  private readonly retryFrames: Uint8Array[];
  readonly bufferCap: number;
  readonly flusher = new FlushScheduler();
  readonly slowClients: SlowClientWatch;

  constructor(private readonly opts: RegistryOptions) {
    this.bufferCap = opts.bufferCap;
    this.slowClients = new SlowClientWatch({ capBytes: opts.bufferCap, ceilingBytes: opts.bufferCeiling, graceMs: opts.slowGraceMs }, (cut) =>
      opts.onSlowCut(cut),
    );
    // ±50% jitter so that a node dying does not make all its clients come back in the same instant.
    const utf8 = new TextEncoder();
    this.retryFrames = Array.from({ length: RETRY_JITTER_STEPS }, (_, i) =>
      utf8.encode(encodeRetry(Math.round(opts.retryMs * (0.5 + i / (RETRY_JITTER_STEPS - 1))))),
    );
    const every = Math.min(SWEEP_MAX_MS, Math.max(HEARTBEAT_SWEEP_MIN_MS, Math.floor(opts.heartbeatMs / 4)));
    this.sweepTimer = setInterval(() => this.heartbeat(), every);
  }

  get size(): number {
    return this.streams.size;
  }

  /** Streams and places held for streams about to open count against MAX_CONNECTIONS alike. */
  get full(): boolean {
    return this.streams.size + this.reserved >= this.opts.maxConnections;
  }

  /**
   * Holds a place for a stream about to open. A request checks capacity, then awaits its token, its
   * actor and the turn it is given (http/turnPacer.ts) before it opens: without a place held, every
   * request of a storm passed the check before any of them opened, and a node of 20 held 22.
   */
  reserve(): StreamPlace {
    this.reserved++;
    let held = true;
    const giveBack = (): void => {
      if (!held) return;
      held = false;
      this.reserved--;
    };
    return {
      open: () => {
        giveBack();
        return this.open();
      },
      release: giveBack,
    };
  }

  private saturatedNow = false;
  /** Places held by requests that passed the capacity check and have not opened yet (`reserve`). */
  private reserved = 0;

  /**
   * Near capacity (from 95% of MAX_CONNECTIONS until below 90%): /readyz answers 503 so a balancer
   * sends new clients elsewhere before this node has to refuse them.
   */
  get saturated(): boolean {
    const n = this.streams.size;
    const max = this.opts.maxConnections;
    if (n >= max * SATURATED_AT) this.saturatedNow = true;
    else if (n < max * UNSATURATED_BELOW) this.saturatedNow = false;
    return this.saturatedNow;
  }

  /** Opens a stream; the caller attaches what it holds with `stream.holdFor`. */
  private open(): SseStream {
    const retry = this.retryFrames[Math.floor(Math.random() * RETRY_JITTER_STEPS)]!;
    const stream = new SseStream(this, SSE_HEADERS, retry);
    if (Number.isFinite(this.opts.maxStreamAgeMs)) {
      stream.rotateAt = Date.now() + this.opts.maxStreamAgeMs * (1 - ROTATION_JITTER + Math.random() * 2 * ROTATION_JITTER);
    }
    this.streams.add(stream);
    this.opts.onOpened();
    return stream;
  }

  streamClosed(stream: SseStream, reason: CloseReason): void {
    if (!this.streams.delete(stream)) return;
    this.opts.onClosed(reason);
  }

  private heartbeat(): void {
    const now = Date.now();
    const due = now - this.opts.heartbeatMs;
    for (const s of this.streams) {
      if (s.rotateAt <= now) this.endSoon(s, "rotated");
      else if (s.lastWriteAt <= due) s.ping();
    }
  }

  /** Ends a stream after a short, jittered `retry:`, so its client resumes at once (elsewhere, perhaps). */
  endSoon(stream: SseStream, reason: CloseReason): void {
    stream.writeText(encodeRetry(Math.round(QUICK_RETRY_MS * (1 + Math.random()))));
    stream.close(reason);
  }

  /** Closes every stream at once (the node lost NATS or its log started over). */
  closeAll(reason: CloseReason): void {
    for (const s of [...this.streams]) s.close(reason);
  }

  /**
   * SIGTERM: ends every stream, spread evenly over `overMs`, each after a short `retry:`, so clients
   * reconnect elsewhere without arriving all at once. Resolves when the last one is closed.
   */
  async drain(overMs: number): Promise<void> {
    const all = [...this.streams];
    if (all.length === 0) return;
    const started = Date.now();
    for (let i = 0; i < all.length; i++) {
      const at = started + (overMs * i) / all.length;
      const wait = at - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const s = all[i]!;
      if (s.open) this.endSoon(s, "drain");
    }
  }

  stop(): void {
    clearInterval(this.sweepTimer);
    this.slowClients.stop();
  }
}
