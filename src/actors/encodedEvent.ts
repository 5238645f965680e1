/**
 * An event encoded once and shared by every subscriber: the SSE bytes are built on first use and reused
 * for all streams of the match, so fan-out does no per-subscriber encoding.
 */
import { encodeMessage } from "../sse/encode.ts";
import { formatEventId, type MatchEvent } from "../match/event.ts";

const utf8 = new TextEncoder();

export class EncodedEvent {
  private frameBytes: Uint8Array | undefined;
  private bodyText: string | undefined;
  private bodyEncoded: Uint8Array | undefined;

  constructor(
    readonly event: MatchEvent,
    /** The log incarnation, part of the id (see match/event.ts). */
    readonly tag: string,
  ) {}

  get id(): string {
    return formatEventId(this.event.seq, this.tag);
  }

  get seq(): number {
    return this.event.seq;
  }

  /** The bytes a window counts for it: the stored payload's, or the body's when that is not known. */
  get size(): number {
    return this.event.bytes ?? this.body.length;
  }

  /** The JSON carried in `data:`; the state patch rides along so pages can update without a re-fetch. */
  get dataJson(): string {
    const e = this.event;
    const payload: Record<string, unknown> = { match: e.match, data: e.data, ts: e.ts };
    if (e.state !== undefined) payload.state = e.state;
    return JSON.stringify(payload);
  }

  /** `event:` and `data:` lines plus the blank line, without `id:` (multiplexed streams add their own). */
  get body(): string {
    return (this.bodyText ??= encodeMessage({ event: this.event.type, data: this.dataJson }));
  }

  /** `body` as bytes, encoded once and shared by every multiplexed stream (each adds its own id line). */
  get bodyBytes(): Uint8Array {
    return (this.bodyEncoded ??= utf8.encode(this.body));
  }

  /** The complete frame of a single-match stream, as bytes. */
  get frame(): Uint8Array {
    return (this.frameBytes ??= utf8.encode(`id: ${this.id}\n${this.body}`));
  }
}
