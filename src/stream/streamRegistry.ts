/**
 * StreamRegistry: every open client stream of this node. It enforces MAX_CONNECTIONS, sends heartbeats
 * from one sweep (no timer per stream), and closes everything on drain.
 */
import { SseStream, type CloseReason } from "./sseStream.ts";

const HEARTBEAT_SWEEP_MIN_MS = 50;

export interface RegistryOptions {
  maxConnections: number;
  heartbeatMs: number;
  bufferCap: number;
  retryMs: number;
  onOpened(): void;
  onClosed(reason: CloseReason): void;
}

export const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
  Connection: "keep-alive",
} as const;

export class StreamRegistry {
  private readonly streams = new Set<SseStream>();
  private readonly closeHooks = new WeakMap<SseStream, () => void>();
  private readonly sweepTimer: ReturnType<typeof setInterval>;

  constructor(private readonly opts: RegistryOptions) {
    const every = Math.max(HEARTBEAT_SWEEP_MIN_MS, Math.floor(opts.heartbeatMs / 4));
    this.sweepTimer = setInterval(() => this.heartbeat(), every);
  }

  get size(): number {
    return this.streams.size;
  }

  get full(): boolean {
    return this.streams.size >= this.opts.maxConnections;
  }

  /** Opens a stream; `onClose` releases what the caller attached to it (subscriptions). */
  open(extraHeaders: Record<string, string> = {}): { stream: SseStream; onClose(hook: () => void): void } {
    // ±50% jitter so that a node dying does not make all its clients come back in the same instant.
    const retryMs = Math.round(this.opts.retryMs * (0.5 + Math.random()));
    const stream = new SseStream(
      {
        bufferCap: this.opts.bufferCap,
        retryMs,
        onClose: (s, reason) => {
          if (!this.streams.delete(s)) return;
          this.closeHooks.get(s)?.();
          this.opts.onClosed(reason);
        },
      },
      { ...SSE_HEADERS, ...extraHeaders },
    );
    this.streams.add(stream);
    this.opts.onOpened();
    return { stream, onClose: (hook) => this.closeHooks.set(stream, hook) };
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
  }
}
