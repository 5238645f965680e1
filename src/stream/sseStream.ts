/**
 * SseStream: one client's open event stream, whatever matches it carries.
 *
 * Writes are coalesced: everything queued for a stream during one turn of the event loop goes out in a
 * single enqueue (one write system call instead of one per event). Unsent bytes are counted through the
 * byte-length queuing strategy: `desiredSize` goes negative by exactly what the socket has not taken,
 * and past the cap the client is cut off (it resumes by id) so it can never slow anyone else or grow
 * memory without bound (invariant 6).
 */
import { encodeComment, encodeRetry } from "../sse/encode.ts";

const utf8 = new TextEncoder();
const PING = utf8.encode(encodeComment("ping"));

export type CloseReason = "client" | "slow" | "drain" | "error" | "auth_expired";

/** Streams with bytes waiting to be flushed at the end of this turn. */
const dirty = new Set<SseStream>();
let flushScheduled = false;

function scheduleFlush(s: SseStream): void {
  dirty.add(s);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}

function flushAll(): void {
  flushScheduled = false;
  for (const s of dirty) s.flush();
  dirty.clear();
}

export interface SseStreamOptions {
  bufferCap: number;
  retryMs: number;
  onClose(stream: SseStream, reason: CloseReason): void;
}

export class SseStream {
  readonly response: Response;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private closedReason: CloseReason | undefined;
  lastWriteAt = Date.now();
  /** While opening, writes are held so every snapshot precedes any live event. */
  private holding = true;

  constructor(private readonly opts: SseStreamOptions, headers: Record<string, string>) {
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c;
        },
        cancel: () => this.close("client"),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: 0 }),
    );
    this.response = new Response(stream, { status: 200, headers });
    this.writeRaw(utf8.encode(encodeRetry(opts.retryMs)));
  }

  get open(): boolean {
    return this.closedReason === undefined;
  }

  /** Bytes the client has not taken yet (queued in the stream plus not yet flushed). */
  get unsentBytes(): number {
    const queued = this.controller ? -(this.controller.desiredSize ?? 0) : 0;
    return Math.max(0, queued) + this.pendingBytes;
  }

  write(bytes: Uint8Array): void {
    if (this.closedReason !== undefined) return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.byteLength;
    if (this.unsentBytes > this.opts.bufferCap) {
      this.close("slow");
      return;
    }
    if (!this.holding) scheduleFlush(this);
  }

  writeText(text: string): void {
    this.write(utf8.encode(text));
  }

  /** Opening is done: let held writes go. */
  release(): void {
    this.holding = false;
    if (this.pending.length > 0) scheduleFlush(this);
  }

  ping(): void {
    this.write(PING);
  }

  flush(): void {
    if (this.closedReason !== undefined || this.pending.length === 0 || !this.controller) return;
    const chunk = this.pending.length === 1 ? this.pending[0]! : concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.writeRaw(chunk);
  }

  private writeRaw(chunk: Uint8Array): void {
    try {
      this.controller!.enqueue(chunk);
      this.lastWriteAt = Date.now();
    } catch {
      // The client left between our check and the write (enqueue after close throws).
      this.close("client");
    }
  }

  /** Ends the stream. Idempotent; `onClose` runs once. */
  close(reason: CloseReason): void {
    if (this.closedReason !== undefined) return;
    if (reason !== "slow" && reason !== "error") {
      this.holding = false;
      this.flush();
    }
    this.closedReason = reason;
    dirty.delete(this);
    this.pending = [];
    this.pendingBytes = 0;
    try {
      if (reason === "slow" || reason === "error") {
        // error() drops what is queued; a stalled client would otherwise keep it all.
        this.controller?.error(new Error(reason));
      } else {
        this.controller?.close();
      }
    } catch {
      /* already closed by the runtime */
    }
    this.opts.onClose(this, reason);
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
