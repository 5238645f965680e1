/**
 * SseStream: one client's open event stream, whatever matches it carries.
 *
 * Writes are coalesced: everything queued for a stream before its flush pass goes out in a single
 * enqueue (one write system call instead of one per event; see FlushScheduler). Unsent bytes are
 * counted through the byte-length queuing strategy: `desiredSize` goes negative by exactly what the
 * socket has not taken. A client that stays past the cap for a while, or goes far past it at once, is
 * cut off (it resumes by id; see SlowClientWatch) so it can never slow anyone else or grow memory
 * without bound (invariant 6 of docs/design.md), while one that takes a burst larger than the cap is not.
 *
 * A node holds tens of thousands of these, so each one is kept small: the stream is its own
 * underlying source (methods, not closures), the options and the queuing strategy are shared, and
 * nothing is allocated for an idle stream beyond the stream itself.
 */
import { encodeComment, encodeMessage } from "../sse/encode.ts";
import type { FlushScheduler } from "./flushScheduler.ts";
import type { StreamCloseReason } from "../telemetry/metricLabels.ts";
import type { SlowClientWatch } from "./slowClientWatch.ts";

const utf8 = new TextEncoder();
const PING = utf8.encode(encodeComment("ping"));
/**
 * The heartbeat a page can see (`?heartbeat=1`): EventSource hides comments, so a page cannot tell a
 * quiet match from a dead connection by them. No id, so it never moves Last-Event-ID; data is not empty
 * because EventSource does not dispatch an event without data.
 */
const NAMED_PING_EVENT = "touchline.ping";
const NAMED_PING = utf8.encode(encodeMessage({ event: NAMED_PING_EVENT, data: "{}" }));

/**
 * Why a stream ended. `replay_paged`: a resume had more to replay than a client may hold unsent, so
 * the stream carried the events that fit and ended; the client comes back with the last id it got
 * for the rest (EventSource does so by itself), and every round moves it forward. `unavailable`: the
 * node lost NATS, or its log started over, or the match could not serve the stream: the client
 * resumes by id, through the balancer, on a node that can.
 */
export type CloseReason = StreamCloseReason;

/** What every stream of a registry shares. */
export interface SseStreamOwner {
  /** CLIENT_BUFFER_BYTES: what a resume may queue before it is paged, and what a slow client may keep. */
  readonly bufferCap: number;
  readonly flusher: FlushScheduler;
  /** Judges, after each write, whether the stream is too slow to keep. */
  readonly slowClients: SlowClientWatch;
  /** Called once per stream, when it closes for whatever reason. */
  streamClosed(stream: SseStream, reason: CloseReason): void;
}

/** What an opener attached to a stream (subscriptions, slots, timers), released when it closes. */
export interface StreamHolder {
  release(): void;
}

/** Queued chunks up to this many bytes are joined into one write; a larger backlog is written as it is. */
const MAX_JOINED_BYTES = 64 * 1024;
/**
 * What a chunk queued for a client costs beside its bytes: its array object (and, for an id line of
 * its own, its backing store) and its entry in the stream's queue. A replay's page is a thousand or
 * two of them, so a resume counts them against the client's buffer with the bytes: 200 multiplexed
 * streams each paging a full buffer of bytes alone grew the node by as much as all their buffers.
 */
const QUEUED_CHUNK_BYTES = 128;

/** `highWaterMark: 0` makes `desiredSize` read minus the unsent bytes; the strategy holds no state. */
const UNSENT_BYTES = new ByteLengthQueuingStrategy({ highWaterMark: 0 });

/**
 * The responses of open streams. Whatever looks at a response's headers makes a Headers object that
 * lives as long as the response, and a stream's response lives as long as the stream: the HTTP layer
 * asks here instead (0.36 KiB per held stream).
 */
const streamResponses = new WeakSet<Response>();

/** Whether `response` is an open stream's (it is never compressed, cached or otherwise rewritten). */
export function isStreamResponse(response: Response): boolean {
  return streamResponses.has(response);
}

export class SseStream implements UnderlyingDefaultSource<Uint8Array> {
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private response: Response | undefined;
  /** Chunks waiting for the flush pass; undefined while there are none. */
  private pending: Uint8Array[] | undefined;
  private pendingBytes = 0;
  private closedReason: CloseReason | undefined;
  /** What the opener attached (subscriptions); released once, on close. */
  private holder: StreamHolder | undefined;
  lastWriteAt = Date.now();
  /** While opening, writes are held so every snapshot precedes any live event. */
  private holding = true;
  /** Opening queued as much replay as the buffer cap allows; the rest waits for the next connection. */
  private replayFull = false;

  constructor(
    private readonly owner: SseStreamOwner,
    headers: HeadersInit,
    retryFrame: Uint8Array,
  ) {
    this.response = new Response(new ReadableStream<Uint8Array>(this, UNSENT_BYTES), { status: 200, headers });
    streamResponses.add(this.response);
    this.writeRaw(retryFrame);
  }

  /** ReadableStream source: the controller arrives synchronously, during construction. */
  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.controller = controller;
  }

  /** ReadableStream source: the client went away. */
  cancel(): void {
    this.close("client");
  }

  /** The HTTP response carrying this stream; handed out once (the stream does not keep it). */
  takeResponse(): Response {
    const r = this.response;
    if (!r) throw new Error("the response of this stream was already taken");
    this.response = undefined;
    return r;
  }

  /** Registers what to release when the stream closes (one holder per stream). */
  holdFor(holder: StreamHolder): void {
    this.holder = holder;
  }

  get open(): boolean {
    return this.closedReason === undefined;
  }

  /** Bytes the client has not taken yet (queued in the stream plus not yet flushed). */
  get unsentBytes(): number {
    const queued = this.controller ? -(this.controller.desiredSize ?? 0) : 0;
    return Math.max(0, queued) + this.pendingBytes;
  }

  /** Queues bytes for the client; false when they will never reach it (closed, or a full replay). */
  write(bytes: Uint8Array): boolean {
    if (this.closedReason !== undefined || this.replayFull) return false;
    if (this.holding && this.pending && this.heldReplayBytes(bytes.byteLength, 1) > this.owner.bufferCap) {
      // A long replay would pass the cap before the client read a byte and be cut as slow, with the
      // same id next time, forever. Whole events only: everything queued so far goes out at release.
      this.replayFull = true;
      return false;
    }
    if (this.pending) this.pending.push(bytes);
    else this.pending = [bytes];
    this.pendingBytes += bytes.byteLength;
    // While opening, the paging above bounds what is held; afterwards the watch judges the client.
    if (this.holding) return true;
    if (this.owner.slowClients.judge(this, this.unsentBytes)) return false;
    this.owner.flusher.add(this);
    return true;
  }

  /** Writes `head` and `body` as one message: both or neither (a replay's page holds whole events). */
  writeParts(head: Uint8Array, body: Uint8Array): boolean {
    if (this.closedReason !== undefined || this.replayFull) return false;
    if (this.holding && this.pending && this.heldReplayBytes(head.byteLength + body.byteLength, 2) > this.owner.bufferCap) {
      this.replayFull = true;
      return false;
    }
    return this.write(head) && this.write(body);
  }

  /** While opening: what the stream would hold with `chunks` more chunks of `bytes` in all queued. */
  private heldReplayBytes(bytes: number, chunks: number): number {
    return this.unsentBytes + bytes + ((this.pending?.length ?? 0) + chunks) * QUEUED_CHUNK_BYTES;
  }

  writeText(text: string): boolean {
    return this.write(utf8.encode(text));
  }

  /** Opening is done: let held writes go (and end the stream if its replay did not fit). */
  release(): void {
    this.holding = false;
    if (this.replayFull) this.close("replay_paged");
    else if (this.pending) this.owner.flusher.add(this);
  }

  /** Heartbeats are `touchline.ping` events instead of comments (`?heartbeat=1`). */
  namedPing = false;
  /** When the registry rotates this stream (MAX_STREAM_AGE); Infinity for never. */
  rotateAt = Infinity;

  ping(): void {
    this.write(this.namedPing ? NAMED_PING : PING);
  }

  flush(): void {
    const pending = this.pending;
    if (this.closedReason !== undefined || !pending || !this.controller) return;
    const total = this.pendingBytes;
    this.pending = undefined;
    this.pendingBytes = 0;
    if (pending.length === 1) this.writeRaw(pending[0]!);
    else if (total <= MAX_JOINED_BYTES) this.writeRaw(sharedConcat(pending, total));
    // A replay's page (up to a client buffer of mostly shared event bytes): handed on as it is, not
    // copied into one chunk per stream (200 multiplexed resumes grew the node by 1.1 GB that way).
    else for (const chunk of pending) this.writeRaw(chunk);
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

  /** Ends the stream. Idempotent; the owner and the holder hear of it once. */
  close(reason: CloseReason): void {
    if (this.closedReason !== undefined) return;
    if (reason !== "slow" && reason !== "error") {
      this.holding = false;
      this.flush();
    }
    this.closedReason = reason;
    this.owner.flusher.delete(this);
    this.pending = undefined;
    this.pendingBytes = 0;
    try {
      if (reason === "slow" || reason === "error") {
        // error() drops what is queued (a stalled client would otherwise keep it all), and Bun closes the
        // socket once it can write again, or at the request's idle timeout. No reason is given: Bun
        // prints an Error given here to stdout as uncaught, stack trace and all, once per cut.
        this.controller?.error();
      } else {
        this.controller?.close();
      }
    } catch {
      /* already closed by the runtime */
    }
    this.owner.streamClosed(this, reason);
    const holder = this.holder;
    this.holder = undefined;
    holder?.release();
  }
}

/**
 * Joins a stream's queued chunks into one. The streams of one match usually queue the very same
 * shared event frames in a pass, so the last join is remembered and handed to every stream whose
 * chunks are identical: one copy per pass instead of one per stream.
 */
let lastParts: Uint8Array[] = [];
let lastJoined: Uint8Array = new Uint8Array(0);

function sharedConcat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === lastParts.length && total === lastJoined.byteLength && parts.every((p, i) => p === lastParts[i])) return lastJoined;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of parts) {
    out.set(c, off);
    off += c.byteLength;
  }
  lastParts = parts;
  lastJoined = out;
  return out;
}
