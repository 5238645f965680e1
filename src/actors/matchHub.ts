/**
 * MatchHub: this node's registry of match actors. Creates them on first use (owners of matches found
 * active, a slice per turn), tells them when the ring or leases change, retires those nobody needs (idle,
 * or moved away), and runs the one periodic sweep they share (owner ticks, idle stops, interest) so no
 * actor holds a timer of its own. Owned matches no actor serves are kept current without one
 * (idleOwnedMatches.ts).
 */
import type { Context } from "@opentelemetry/api";
import type { LoggedEvent } from "../bus/matchLog.ts";
import { MatchActor } from "./matchActor.ts";
import { IdleOwnedMatches } from "./idleOwnedMatches.ts";
import { TurnQueue } from "./turnQueue.ts";
import { OWNER_TICK_MS } from "../cluster/nodeLink.ts";
import type { MatchServices } from "./services.ts";

/**
 * How often the sweep runs: owners tick within OWNER_TICK_MS plus one sweep of their last word, and
 * followers' watchdogs (matchActor.ts) notice a silent owner within a sweep.
 */
const SWEEP_MS = 500;
/**
 * Actors retired at once (a ring change moving thousands of idle matches away) are stopped this many
 * per turn of the event loop: stopping 10,000 owners in one turn (each hands back its place in its
 * shard's lease) held the loop for 300-460 ms.
 */
const STOPS_PER_TURN = 500;
/**
 * Owners started (startSoon), or matches checked to be kept without one (keepCurrentSoon), per turn of
 * the event loop. Discovery comes in bursts: a ring move can give a node thousands of recently active
 * matches at once, and each owner start is a lease check, a follow of the log and two reads.
 */
const STARTS_PER_TURN = 100;

export interface HubOptions {
  actorIdleMs: number;
  /** Tell a match's owner that this node still has subscribers (keeps the owner's actor alive). */
  sendInterest(owner: string, match: string): void;
}

export class MatchHub {
  private readonly actors = new Map<string, MatchActor>();
  /**
   * The same actors by shard. Leases and ring moves come per shard: a node joining moves about half the
   * shards of a two-node cluster, their lease changes arriving over many turns; walking every actor on
   * each of those turns, with the reconsiders it made, was 82% of a 246 ms busy stretch at 20,000 matches.
   */
  private readonly byShard = new Map<number, Set<MatchActor>>();
  private readonly sweepTimer: ReturnType<typeof setInterval>;
  private changedShards = new Set<number>();
  /**
   * Retired actors waiting for their turn to stop (STOPS_PER_TURN), by match, in retirement order. Not
   * stopped yet, so a match used again meanwhile takes its actor back (`get`) rather than starting a
   * second one beside it, whose lease the first would hand back when it stops.
   */
  private readonly toStop = new Map<string, MatchActor>();
  /** Matches whose owner startSoon will start, in the order found. */
  private readonly toStart = new TurnQueue(STARTS_PER_TURN, (match) => this.startNow(match));
  /** Matches keepCurrentSoon will check, in the order found. */
  private readonly toAdopt = new TurnQueue(STARTS_PER_TURN, (match) => this.adoptNow(match));
  private readonly idle: IdleOwnedMatches;
  /** stopAll ran: nothing starts any more (a check of an idle match may still answer after it). */
  private stopped = false;

  constructor(
    private readonly svc: MatchServices,
    private readonly opts: HubOptions,
  ) {
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.idle = new IdleOwnedMatches(svc, {
      hasActor: (match) => this.actors.has(match) || this.toStop.has(match) || this.toStart.has(match),
      startOwner: (match) => this.startSoon(match),
    });
  }

  /**
   * An event off the stream tail of a match this node owns and no actor follows: folded into the
   * match's index entry without an actor when that is provably exact, else its owner actor starts.
   */
  unclaimedEvent(event: LoggedEvent, trace: Context | undefined): void {
    const match = event.match;
    // An actor (or one about to start) not following yet reads the log from its entry, this event included.
    if (this.actors.has(match) || this.toStart.has(match)) return;
    // Retired but not stopped: taken back, as a client's arrival would.
    if (this.toStop.has(match)) this.startSoon(match);
    else this.idle.take(event, trace);
  }

  /** stopAll ran: `get` refuses (the node starting over has a new hub, or is stopping). */
  get isStopped(): boolean {
    return this.stopped;
  }

  /**
   * The match's actor, started if there is none. Throws once the hub is stopped: an actor made then
   * would never be swept or stopped (its lease, follow and timers kept for good).
   */
  get(match: string): MatchActor {
    let actor = this.actors.get(match);
    if (actor) return actor;
    if (this.stopped) throw new Error(`the match hub is stopped; no actor for ${match}`);
    actor = this.toStop.get(match);
    if (actor) {
      // Retired but not stopped yet: back in service, in whatever role the ring now gives it.
      this.toStop.delete(match);
      this.register(actor);
      actor.reconsider();
      return actor;
    }
    this.idle.forget(match);
    actor = new MatchActor(match, this.svc);
    this.register(actor);
    actor.start();
    return actor;
  }

  private register(actor: MatchActor): void {
    this.actors.set(actor.match, actor);
    let shard = this.byShard.get(actor.shard);
    if (!shard) this.byShard.set(actor.shard, (shard = new Set()));
    shard.add(actor);
  }

  /**
   * Starts the match's owner within a few turns, if the ring still gives this node the match then (and
   * no actor exists by then: a client's arrival starts one at once). For matches found active elsewhere
   * than through a request; their events wait in the log, which the owner reads from where it starts.
   */
  startSoon(match: string): void {
    if (this.stopped || this.actors.has(match)) return;
    this.toStart.add(match);
  }

  private startNow(match: string): boolean {
    if (this.stopped || this.actors.has(match) || this.svc.ownerOf(match) !== this.svc.selfId) return false;
    this.get(match);
    return true;
  }

  /**
   * A match that came to this node with no event off the tail yet (a ring move, an index entry this node
   * had not seen): kept without an actor if nothing is stored after its entry, else its owner starts and
   * reads the log (the last owner may have died before writing its entry). Within a few turns, if the
   * ring still gives this node the match then.
   */
  keepCurrentSoon(match: string): void {
    if (this.stopped || this.actors.has(match) || this.toStart.has(match)) return;
    this.toAdopt.add(match);
  }

  private adoptNow(match: string): boolean {
    // A retired actor wrote its entry up to what it applied; its match's next event is checked anyway.
    if (this.stopped || this.actors.has(match) || this.toStart.has(match) || this.toStop.has(match)) return false;
    if (this.svc.ownerOf(match) !== this.svc.selfId) return false;
    this.idle.adopt(match);
    return true;
  }

  /** Matches this node owns now: owner actors, and idle matches kept without one. */
  ownedCount(): number {
    let n = this.idle.size;
    for (const a of this.actors.values()) if (a.role === "owner") n++;
    return n;
  }

  upstreamFeeds(): number {
    let n = 0;
    for (const a of this.actors.values()) if (a.hasUpstreamFeed) n++;
    return n;
  }

  /** NATS came back: every actor re-checks whether it should own, follow, or hand over, and resyncs. */
  reconsiderAll(): void {
    this.idle.clear();
    for (const a of this.actors.values()) a.reconsider();
  }

  /**
   * The ring changed: the actors of the shards it moved re-check their role, and so do those not yet
   * in the role the ring gives them (an owner-to-be still waiting for a lease the node that just left
   * held). The others are left alone: reconsidering all 20,000 actors of a node was half of a 112 ms
   * busy stretch, on every node, at each node joining or leaving.
   */
  ringChanged(moved: ReadonlySet<number>, ownerOfShard: (shard: number) => string | undefined): void {
    this.idle.shardsMoved(moved);
    for (const shard of moved) {
      const actors = this.byShard.get(shard);
      if (!actors) continue;
      const owner = ownerOfShard(shard);
      for (const a of actors) {
        // An actor serving nobody on a node that no longer owns its match is stopped, as the idle
        // sweep would (its lease handed back): a node joining a two-node cluster made 10,000 of them
        // follow the newcomer, each with a feed subscription and a sync the newcomer had to answer.
        if (owner !== undefined && owner !== this.svc.selfId && a.servesNobody) this.retire(a);
        else a.reconsider();
      }
    }
    for (const a of this.actors.values()) if (!moved.has(a.shard) && !a.settledUnder(ownerOfShard(a.shard))) a.reconsider();
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
    for (const shard of shards) for (const a of this.byShard.get(shard) ?? []) a.reconsider();
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
        this.retire(a);
      }
    }
  }

  /**
   * Forgets an actor, so the match's next use starts a new one, and stops it within a few turns (it
   * keeps its lease until then, so nothing acts for the match meanwhile without one).
   */
  private retire(a: MatchActor): void {
    this.actors.delete(a.match);
    const shard = this.byShard.get(a.shard);
    shard?.delete(a);
    if (shard?.size === 0) this.byShard.delete(a.shard);
    this.toStop.set(a.match, a);
    if (this.toStop.size === 1) setImmediate(this.stopSome);
  }

  private readonly stopSome = (): void => {
    let stopped = 0;
    for (const [match, a] of this.toStop) {
      if (stopped++ >= STOPS_PER_TURN) break;
      this.toStop.delete(match);
      void a.stop();
    }
    if (this.toStop.size > 0) setImmediate(this.stopSome);
  };

  async stopAll(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    this.toStart.clear();
    this.toAdopt.clear();
    this.idle.clear();
    const all = [...this.actors.values(), ...this.toStop.values()];
    this.toStop.clear();
    this.actors.clear();
    this.byShard.clear();
    await Promise.all(all.map((a) => a.stop()));
  }
}
