/**
 * PrivateMatchGuard: wraps the subscription of a stream that may read a match only while it is public.
 *
 * The HTTP layer refuses (401/403) a match already known to be private, but a match can turn private
 * after that check: its next event may carry `"private": true`, or the event doing so may be applied
 * between the check and the join. The actor calls this guard from its mailbox, where its privacy flag
 * is current, before anything is written: the moment the match is private the stream gets a
 * `touchline.forbidden` event and is closed, and nothing of the private match is sent.
 */
import type { EncodedEvent } from "../actors/encodedEvent.ts";
import type { MatchSubscriber } from "../actors/subscriber.ts";
import type { MatchSnapshot } from "../actors/matchSnapshot.ts";

export class PrivateMatchGuard implements MatchSubscriber {
  constructor(
    private readonly inner: MatchSubscriber,
    /** The match's privacy as its actor knows it now. */
    private readonly isPrivate: () => boolean,
    /** Ends the stream with the reason; called at most once by its owner. */
    private readonly deny: () => void,
  ) {}

  get lastSeq(): number {
    return this.inner.lastSeq;
  }

  get open(): boolean {
    return this.inner.open;
  }

  sendSnapshot(snapshot: MatchSnapshot): void {
    if (this.isPrivate()) this.deny();
    else this.inner.sendSnapshot(snapshot);
  }

  sendEvent(e: EncodedEvent): boolean {
    if (e.private || this.isPrivate()) {
      this.deny();
      return false;
    }
    return this.inner.sendEvent(e);
  }

  matchEnded(): void {
    this.inner.matchEnded();
  }

  actorStopped(): void {
    this.inner.actorStopped();
  }
}
