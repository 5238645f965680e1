/**
 * The two ways a client stream subscribes to a match, as the actors see them (MatchSubscriber).
 * A single-match stream writes each event's shared frame as is; a multiplexed stream writes the shared
 * body behind its own composite id (see match/cursor.ts).
 */
import type { EncodedEvent } from "../actors/encodedEvent.ts";
import type { MatchSubscriber } from "../actors/subscriber.ts";
import { formatCursor, type Cursor } from "../match/cursor.ts";
import { encodeMessage } from "../sse/encode.ts";
import type { SseStream } from "./sseStream.ts";
import type { MatchSnapshot } from "../actors/matchSnapshot.ts";
import { SNAPSHOT_TYPE } from "../match/event.ts";

export class SingleMatchSubscription implements MatchSubscriber {
  lastSeq = 0;

  constructor(
    private readonly stream: SseStream,
    readonly match: string,
  ) {}

  get open(): boolean {
    return this.stream.open;
  }

  sendSnapshot(snapshot: MatchSnapshot): void {
    this.lastSeq = snapshot.seq;
    this.stream.write(snapshot.frame);
  }

  sendEvent(e: EncodedEvent): boolean {
    this.lastSeq = e.seq;
    return this.stream.write(e.frame);
  }

  /** The match ended: `touchline.end`, then the stream ends (the client's resume then gets 204). */
  matchEnded(): void {
    this.stream.write(matchEndFrame(this.match));
    this.stream.close("ended");
  }

  /** Its actor stopped: the stream ends and the client resumes by id. */
  actorStopped(): void {
    this.stream.close("unavailable");
  }
}

/** `event: touchline.end` (no id), data `{"match"}`: the match is over, nothing more will come. */
const MATCH_END_EVENT = "touchline.end";

function matchEndFrame(match: string): Uint8Array {
  return utf8.encode(encodeMessage({ event: MATCH_END_EVENT, data: JSON.stringify({ match }) }));
}

const utf8 = new TextEncoder();

/** Shared by every match of one multiplexed stream: the cursor advances as events go out. */
export class MultiplexCursor {
  readonly cursor: Cursor = new Map();
  /** Matches of the stream that have ended; when all have, the stream ends. */
  private readonly endedMatches = new Set<string>();

  /** Notes a match as ended; true when every match of the stream has. */
  end(match: string): boolean {
    this.endedMatches.add(match);
    return this.endedMatches.size >= this.cursor.size;
  }

  /** Starts from the resumed positions; matches not resumed start at 0 until their snapshot. */
  constructor(matches: string[], resumed: Cursor) {
    for (const m of matches) this.cursor.set(m, resumed.get(m) ?? 0);
  }

  /** `tag`: the log incarnation of the event or snapshot sent (see match/event.ts). */
  advance(match: string, seq: number, tag: string): string {
    this.cursor.set(match, seq);
    return formatCursor(this.cursor, tag);
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

  sendSnapshot(snapshot: MatchSnapshot): void {
    this.lastSeq = snapshot.seq;
    const id = this.shared.advance(this.match, snapshot.seq, snapshot.tag);
    this.stream.writeText(encodeMessage({ id, event: SNAPSHOT_TYPE, data: snapshot.dataJson }));
  }

  sendEvent(e: EncodedEvent): boolean {
    this.lastSeq = e.seq;
    // Only the id line is this stream's own; the event's bytes are shared with every other stream.
    return this.stream.writeParts(utf8.encode(`id: ${this.shared.advance(this.match, e.seq, e.tag)}\n`), e.bodyBytes);
  }

  /** The match ended: `touchline.end` for it; the others go on, and the stream ends with the last of them. */
  matchEnded(): void {
    this.stream.write(matchEndFrame(this.match));
    if (this.shared.end(this.match)) this.stream.close("ended");
  }

  /** One match's actor stopped: the whole stream ends and the client resumes every match by its cursor. */
  actorStopped(): void {
    this.stream.close("unavailable");
  }
}
