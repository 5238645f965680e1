/**
 * A match's state at one event, as subscribers are sent it. Like EncodedEvent it is built once and
 * shared: when thousands of clients (re)connect to a match at once, they all get the same bytes
 * instead of each stringifying and encoding the state again.
 */
import type { Json } from "../match/mergePatch.ts";
import { encodeMessage } from "../sse/encode.ts";
import { SNAPSHOT_TYPE, formatEventId } from "../match/event.ts";

const utf8 = new TextEncoder();

export class MatchSnapshot {
  private dataText: string | undefined;
  private frameBytes: Uint8Array | undefined;

  constructor(
    readonly match: string,
    /** Id of the last event the state includes; 0 for a match with no events yet. */
    readonly seq: number,
    readonly state: Record<string, Json>,
    /** The log incarnation, part of the id (see match/event.ts). */
    readonly tag: string,
  ) {}

  /** The id of the last event the state includes; undefined for a match with no events yet. */
  get id(): string | undefined {
    return this.seq > 0 ? formatEventId(this.seq, this.tag) : undefined;
  }

  /** What `data:` carries: `{"match", "state"}`. */
  get dataJson(): string {
    return (this.dataText ??= JSON.stringify({ match: this.match, state: this.state }));
  }

  /** The whole frame of a single-match stream; a match with no events yet has no `id:` line. */
  get frame(): Uint8Array {
    return (this.frameBytes ??= utf8.encode(encodeMessage({ event: SNAPSHOT_TYPE, data: this.dataJson, ...(this.seq > 0 ? { id: this.id } : {}) })));
  }
}
