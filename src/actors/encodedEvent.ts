/**
 * An event as a node keeps it: the SSE frame subscribers are sent, encoded once when the event is
 * applied and shared by every stream of the match, and the few fields the actor decides on. Nothing
 * else: the parsed event (its data as objects and strings), the message body as a string and the body
 * again as bytes were each kept beside the frame before, and windows of 1 KiB events held 4.5 times
 * the bytes they counted (of tiny events, 8 times): memory followed event counts, not bytes.
 * The rare readers of the whole event (a follower's sync, a long poll) decode it from the frame.
 */
import { encodeMessage } from "../sse/encode.ts";
import { formatEventId, type MatchEvent } from "../match/event.ts";
import type { Json } from "../match/mergePatch.ts";

const utf8 = new TextEncoder();
const utf8Text = new TextDecoder();

/**
 * What an event held costs beside its frame's bytes: this object, the frame's array object and
 * backing store, and its entry in a window and the budget. Measured (encodedEvent.test.ts, heap after
 * a full collection per event held): 525 bytes for a frame of about 150, 1,530 for one of about 1,130.
 */
const HELD_BYTES_PER_EVENT = 384;

const EVENT_FIELD = "event: ";
const DATA_FIELD = "\ndata: ";

/** The JSON carried in `data:`; the state patch rides along so pages can update without a re-fetch. */
function dataJson(e: MatchEvent): string {
  const payload: Record<string, unknown> = { match: e.match, data: e.data, ts: e.ts };
  if (e.state !== undefined) payload.state = e.state;
  return JSON.stringify(payload);
}

export class EncodedEvent {
  readonly seq: number;
  /** The seq before this event (see MatchEvent.prev). */
  readonly prev: number;
  readonly private: boolean;
  readonly final: boolean;
  /** `id:` line, then `event:` and `data:` lines and the blank line: a single-match stream's frame. */
  readonly frame: Uint8Array;
  /** Where the frame's body (everything after the `id:` line) starts. */
  private readonly bodyAt: number;
  private body: Uint8Array | undefined;

  constructor(
    event: MatchEvent,
    /** The log incarnation, part of the id (see match/event.ts). */
    readonly tag: string,
  ) {
    this.seq = event.seq;
    this.prev = event.prev;
    this.private = event.private === true;
    this.final = event.final === true;
    const idLine = `id: ${formatEventId(event.seq, tag)}\n`;
    this.bodyAt = idLine.length; // the id is ASCII: one byte per character
    this.frame = utf8.encode(idLine + encodeMessage({ event: event.type, data: dataJson(event) }));
  }

  get id(): string {
    return formatEventId(this.seq, this.tag);
  }

  /** The bytes a window counts for it: what it holds (see HELD_BYTES_PER_EVENT). */
  get size(): number {
    return this.frame.byteLength + HELD_BYTES_PER_EVENT;
  }

  /** The frame without its `id:` line, shared by every multiplexed stream (each adds its own id line). */
  get bodyBytes(): Uint8Array {
    // A view of the frame, made once: each multiplexed stream queues it for every event.
    return (this.body ??= this.frame.subarray(this.bodyAt));
  }

  /** The whole event again, read back from the frame (for a follower's sync, a long poll). */
  decode(): MatchEvent {
    const body = utf8Text.decode(this.bodyBytes);
    // `event: <type>\ndata: <json>\n\n`: JSON has no raw line breaks, so it is one `data:` line.
    const typeEnd = body.indexOf(DATA_FIELD);
    const dataAt = typeEnd + DATA_FIELD.length;
    const type = body.slice(EVENT_FIELD.length, typeEnd);
    const payload = JSON.parse(body.slice(dataAt, body.length - 2)) as { match: string; data: Json; ts: number; state?: Json };
    const event: MatchEvent = { match: payload.match, seq: this.seq, prev: this.prev, type, data: payload.data, ts: payload.ts };
    if (payload.state !== undefined) event.state = payload.state;
    if (this.private) event.private = true;
    if (this.final) event.final = true;
    return event;
  }
}
