/**
 * StreamLease: what one open client stream holds on this node (its match subscriptions, its slot under
 * the per-address cap, its token-expiry timer), given back together and once when the stream closes,
 * whatever the reason. One small object per stream rather than a chain of closures, because a node
 * holds tens of thousands of streams.
 */
import type { MatchSubscriber } from "../actors/subscriber.ts";
import type { StreamHolder } from "../stream/sseStream.ts";

/** A match actor as a stream sees it: something to leave. */
export interface Joined {
  leave(sub: MatchSubscriber): void;
}

export interface Join {
  actor: Joined;
  sub: MatchSubscriber;
}

/** The lease of a single-match stream: one subscription, kept in fields rather than a list. */
export class StreamLease implements StreamHolder {
  constructor(
    private readonly actor: Joined,
    private readonly sub: MatchSubscriber,
    private readonly releaseSlot: () => void,
    private readonly stopExpiry: () => void,
  ) {}

  release(): void {
    this.stopExpiry();
    this.releaseSlot();
    this.actor.leave(this.sub);
  }
}

/** The lease of a multiplexed stream: one subscription per match. */
export class MultiplexLease implements StreamHolder {
  constructor(
    private readonly joins: readonly Join[],
    private readonly releaseSlot: () => void,
    private readonly stopExpiry: () => void,
  ) {}

  release(): void {
    this.stopExpiry();
    this.releaseSlot();
    for (const j of this.joins) j.actor.leave(j.sub);
  }
}
