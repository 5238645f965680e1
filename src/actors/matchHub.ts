/**
 * MatchHub: this node's registry of match actors. Creates them on first use, tells them when membership
 * or leases change, and runs the one periodic sweep they share (owner ticks, idle stops, interest) so no
 * actor holds a timer of its own.
 */
import { MatchActor } from "./matchActor.ts";
import { OWNER_TICK_MS } from "../cluster/nodeLink.ts";
import type { MatchServices } from "./services.ts";

/**
 * How often the sweep runs: owners tick within OWNER_TICK_MS plus one sweep of their last word, and
 * followers' watchdogs (matchActor.ts) notice a silent owner within a sweep.
 */
const SWEEP_MS = 500;

export interface HubOptions {
  actorIdleMs: number;
  /** Tell a match's owner that this node still has subscribers (keeps the owner's actor alive). */
  sendInterest(owner: string, match: string): void;
}

export class MatchHub {
  private readonly actors = new Map<string, MatchActor>();
  private readonly sweepTimer: ReturnType<typeof setInterval>;
  private changedShards = new Set<number>();

  constructor(
    private readonly svc: MatchServices,
    private readonly opts: HubOptions,
  ) {
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
  }

  get(match: string): MatchActor {
    let actor = this.actors.get(match);
    if (!actor) {
      actor = new MatchActor(match, this.svc);
      this.actors.set(match, actor);
      actor.start();
    }
    return actor;
  }

  ownedCount(): number {
    let n = 0;
    for (const a of this.actors.values()) if (a.role === "owner") n++;
    return n;
  }

  upstreamFeeds(): number {
    let n = 0;
    for (const a of this.actors.values()) if (a.hasUpstreamFeed) n++;
    return n;
  }

  /** Membership changed: every actor re-checks whether it should own, follow, or hand over. */
  membershipChanged(): void {
    for (const a of this.actors.values()) a.reconsider();
  }

  /**
   * A shard's lease changed hands: its matches' actors that held the old one must step down at once.
   * Changes arriving together (a node joining or leaving moves many shards) are handled in one pass.
   */
  leaseChanged(shard: number): void {
    if (this.changedShards.size === 0) queueMicrotask(() => this.reconsiderChangedShards());
    this.changedShards.add(shard);
  }

  private reconsiderChangedShards(): void {
    const shards = this.changedShards;
    this.changedShards = new Set();
    for (const a of this.actors.values()) if (shards.has(a.shard)) a.reconsider();
  }

  private sweep(): void {
    const now = Date.now();
    for (const a of this.actors.values()) {
      a.watchdog(now);
      if (a.role === "owner") {
        // No follower has shown interest lately: nobody would read the tick (an idle match owned and
        // watched on one node costs NATS nothing).
        if (now - a.remoteInterestAt <= this.opts.actorIdleMs && a.feedSilence(now) >= OWNER_TICK_MS) a.tick();
      } else if (a.subscribers.size > 0) {
        const owner = this.svc.ownerOf(a.match);
        if (owner && owner !== this.svc.selfId && now - a.interestSentAt > this.opts.actorIdleMs / 3) {
          a.interestSentAt = now;
          this.opts.sendInterest(owner, a.match);
        }
      }
      if (a.hasClients) a.lastInterestAt = now;
      else if (now - a.lastInterestAt > this.opts.actorIdleMs && a.idleSinceEvent(now) > this.opts.actorIdleMs) {
        // Deleting the entry being visited is safe in a Map's iteration.
        this.actors.delete(a.match);
        void a.stop();
      }
    }
  }

  async stopAll(): Promise<void> {
    clearInterval(this.sweepTimer);
    const all = [...this.actors.values()];
    this.actors.clear();
    await Promise.all(all.map((a) => a.stop()));
  }
}
