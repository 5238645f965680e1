/**
 * The two ways a client stream subscribes to a match, as the actors see them (MatchSubscriber).
 * A single-match stream writes each event's shared frame as is; a multiplexed stream writes the shared
 * body behind its own composite id (see match/cursor.ts).
 */
import type { EncodedEvent } from "../actors/encodedEvent.ts";
import type { MatchSubscriber } from "../actors/subscriber.ts";
import { formatCursor, type Cursor } from "../match/cursor.ts";
import type { Json } from "../match/mergePatch.ts";
import { encodeMessage } from "../sse/encode.ts";
import type { SseStream } from "./sseStream.ts";

function snapshotData(match: string, state: Record<string, Json>): string {
  return JSON.stringify({ match, state });
}

export class SingleMatchSubscription implements MatchSubscriber {
  lastSeq = 0;

  constructor(private readonly stream: SseStream) {}

  get open(): boolean {
    return this.stream.open;
  }

  sendSnapshot(match: string, seq: number, state: Record<string, Json>): void {
    this.lastSeq = seq;
    const msg = { event: "snapshot", data: snapshotData(match, state), ...(seq > 0 ? { id: String(seq) } : {}) };
    this.stream.writeText(encodeMessage(msg));
  }

  sendEvent(e: EncodedEvent): void {
    this.lastSeq = e.seq;
    this.stream.write(e.frame);
  }
}

/** Shared by every match of one multiplexed stream: the cursor advances as events go out. */
export class MultiplexCursor {
  readonly cursor: Cursor = new Map();

  /** Starts from the resumed positions; matches not resumed start at 0 until their snapshot. */
  constructor(matches: string[], resumed: Cursor) {
    for (const m of matches) this.cursor.set(m, resumed.get(m) ?? 0);
  }

  advance(match: string, seq: number): string {
    this.cursor.set(match, seq);
    return formatCursor(this.cursor);
  }
}

export class MultiplexedSubscription implements MatchSubscriber {
  lastSeq = 0;

  constructor(
    private readonly stream: SseStream,
    private readonly shared: MultiplexCursor,
    readonly match: string,
  ) {}

  get open(): boolean {
    return this.stream.open;
  }

  sendSnapshot(match: string, seq: number, state: Record<string, Json>): void {
    this.lastSeq = seq;
    const id = this.shared.advance(match, seq);
    this.stream.writeText(encodeMessage({ id, event: "snapshot", data: snapshotData(match, state) }));
  }

  sendEvent(e: EncodedEvent): void {
    this.lastSeq = e.seq;
    this.stream.writeText(`id: ${this.shared.advance(this.match, e.seq)}\n${e.body}`);
  }
}
