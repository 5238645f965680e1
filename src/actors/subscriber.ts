/**
 * What a match actor needs from a subscriber: one client stream's view of one match. Implemented by the
 * stream layer; the actor never sees sockets.
 */
import type { EncodedEvent } from "./encodedEvent.ts";
import type { MatchSnapshot } from "./matchSnapshot.ts";

export interface MatchSubscriber {
  /** Seq of the last event of this match sent to the client (0 when none). */
  readonly lastSeq: number;
  /** False once the client is gone: the actor drops it. */
  readonly open: boolean;
  /** The match's state (shared by every subscriber sent it: do not modify). */
  sendSnapshot(snapshot: MatchSnapshot): void;
  /** True when the event is on its way to the client; false when it never will be (a full replay, a closed stream). */
  sendEvent(e: EncodedEvent): boolean;
  /**
   * The match ended: everything up to its final event was sent. The subscriber tells its client
   * (`touchline.end`) and lets go of the match; a single-match stream ends.
   */
  matchEnded(): void;
  /**
   * The actor serving it stopped while it was live (the hub retired it, the node starts over or shuts
   * down): nothing more comes through it. The subscriber lets go of the match; a stream ends, so its
   * client resumes by id where the match is served.
   */
  actorStopped(): void;
}

/** The subscribers of one match on this node. Fan-out skips what a subscriber already has. */
export class SubscriberSet {
  private readonly subs = new Set<MatchSubscriber>();

  get size(): number {
    return this.subs.size;
  }

  add(s: MatchSubscriber): void {
    this.subs.add(s);
  }

  delete(s: MatchSubscriber): boolean {
    return this.subs.delete(s);
  }

  clear(): void {
    this.subs.clear();
  }

  /** Sends to every subscriber that has not seen it; returns how many it reached. */
  fanOut(e: EncodedEvent): number {
    let n = 0;
    for (const s of this.subs) {
      if (!s.open) {
        this.subs.delete(s);
        continue;
      }
      if (e.seq > s.lastSeq && s.sendEvent(e)) n++;
    }
    return n;
  }

  [Symbol.iterator](): Iterator<MatchSubscriber> {
    return this.subs[Symbol.iterator]();
  }
}
