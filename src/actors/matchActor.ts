/**
 * MatchActor: one per active match per node, processing one message at a time from its mailbox.
 *
 * On the match's owner it follows the match in the log (through the node's stream tail): it folds the
 * state, keeps a window of recent events, fans them out to this node's subscribers and publishes them
 * on the match's feed for the other nodes. Elsewhere it holds this node's one upstream feed of the
 * match and fans that out. Either way every event is applied exactly once and in order: an event is
 * accepted only when its `prev` is the last seq applied; anything else is a gap, filled from the log
 * before going on. Joining subscribers are served by resume.ts; the protocol is cluster/nodeLink.ts.
 */
import type { Context } from "@opentelemetry/api";
import type { MatchEvent } from "../match/event.ts";
import type { Json } from "../match/mergePatch.ts";
import { patchWithin } from "../match/stateSize.ts";
import type { Follower, LoggedEvent } from "../bus/matchLog.ts";
import { EncodedEvent } from "./encodedEvent.ts";
import { FAILURES_BEFORE_GIVING_UP_JOINS, type JoinOutcome, type PendingJoin, type ResumeHost, Resumes, chain } from "./resume.ts";

export type { JoinOutcome } from "./resume.ts";
import { EventWindow } from "./eventWindow.ts";
import { SubscriberSet, type MatchSubscriber } from "./subscriber.ts";
import { MatchSnapshot } from "./matchSnapshot.ts";
import type { FeedMessage, MatchServices, SyncReply } from "./services.ts";
import type { ActorRole } from "../telemetry/matchSpans.ts";
import { shardOf } from "../cluster/shards.ts";

/** Retry pacing while an owner is unreachable, a lease is still held by a live node, or a read failed. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;
/**
 * Feed messages buffered while a follower syncs. Dropping past this loses nothing: every event names
 * its predecessor, so the first one after the drop shows the gap, which is filled from the log.
 */
const MAX_BUFFERED_FEED = 256;
/**
 * A follower serving clients that has heard nothing from the owner for this long (owners tick at
 * least every OWNER_TICK_MS plus one sweep, see cluster/nodeLink.ts) suspects the owner (paused, partitioned, fenced but not
 * yet aware) and reads the log itself, every LOG_CHECK_MS while the silence lasts: clients on healthy
 * nodes never wait for membership to notice a dead owner.
 */
const FEED_SILENCE_MS = 2500;
const LOG_CHECK_MS = 500;
/**
 * A mailbox step (a log read, a lease request, a sync) still running after this long is reported, once,
 * by the watchdog. Every call a step awaits has a timeout of its own, so a step outliving them all is a
 * bug, and one that would otherwise show only as the match's streams sitting on heartbeats.
 */
const STUCK_STEP_MS = 30_000;
/** Events sent in a sync reply: enough for reconnect storms to be served from memory on any node. */
const SYNC_WINDOW_EVENTS = 500;
/** Longest a state read waits for this node to apply what JetStream already acknowledged. */
const STATE_CATCH_UP_MS = 2000;

export class MatchActor {
  role: ActorRole = "follower";
  private epoch = 0;
  private ready = false;
  private lastSeq = 0;
  private state: Record<string, Json> = {};
  /** At least the state's JSON bytes; undefined: measured when next needed (match/stateSize.ts). */
  private stateBytesAtMost: number | undefined;
  private isPrivate = false;
  /** The match's final event has been applied (it is `lastSeq`): no more events, subscribers are ended. */
  private ended = false;
  private readonly window: EventWindow;
  readonly subscribers = new SubscriberSet();
  private tail: Promise<void> = Promise.resolve();
  /** When the running mailbox step began (Date.now), 0 between steps; whether the watchdog reported it. */
  private stepStartedAt = 0;
  private stuckReported = false;
  /**
   * Joins posted to the mailbox whose step has not run yet. They count as clients: an actor that looked
   * idle to a ring change while a client's join waited behind its first step was retired, and the join
   * then went live in the stopped actor (a snapshot, then nothing).
   */
  private joinsInFlight = 0;
  /** Joins that arrived before the actor was ready. */
  private pendingJoins: PendingJoin[] = [];
  /** Joins being served: from the window, the log, or once this node catches up (resume.ts). */
  /** Made on the first join: an owner of a match nobody watches never needs one (idle matches stay small). */
  private resumesOrNone: Resumes | undefined;
  /** Other nodes' syncs and this node's state reads waiting for the actor to be ready. */
  private readyWaiters: ((ready: boolean) => void)[] = [];
  /** State reads waiting for this actor to reach a seq JetStream already holds. */
  private seqWaiters: { seq: number; answer: () => void }[] = [];
  /** The last snapshot sent, reused while the state has not moved (a reconnect storm shares it). */
  private snapshotCache: MatchSnapshot | undefined;
  private jsFollower: Follower | undefined;
  private unsubscribeFeed: (() => void) | undefined;
  private feedBuffer: { msg: FeedMessage; trace: Context | undefined }[] | undefined;
  /** The owner this follower last synced with (or tried to): a different ring owner means re-sync. */
  private followedOwner: string | undefined;
  /** Follower: when the owner last said anything (an event or a tick) under a current epoch. */
  private lastFeedAt = Date.now();
  private lastLogCheckAt = 0;
  private gapRetryMs = RETRY_MIN_MS;
  private gapFailures = 0;
  /** Failed attempts in a row to become ready (sync, log, lease): pending joins give up past a few. */
  private readyFailures = 0;
  private gapRetryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelay = RETRY_MIN_MS;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private lastEventAt = Date.now();
  /** Owner: when it last said anything on the feed (an event or a tick). */
  private feedSentAt = 0;
  /** Owner catching up from JetStream: ready once it has applied this seq. */
  private readyAt = 0;
  /** Last time this node or another node showed interest; owners stay while it is recent. */
  lastInterestAt = Date.now();
  /** When this (follower) node last told the owner it still has subscribers. */
  interestSentAt = 0;
  /**
   * Owner: when a follower node last said it serves this match (a sync, or its periodic interest). Ticks
   * exist for followers only (they reveal a lost last event), so an owner ticks only while this is recent.
   */
  remoteInterestAt = 0;
  /** The match's shard (cluster/shards.ts), whose lease the owner acts under: hashed once, not per sweep. */
  readonly shard: number;

  constructor(
    readonly match: string,
    private readonly svc: MatchServices,
  ) {
    this.shard = shardOf(match);
    this.window = new EventWindow(svc.windowEvents, svc.windowBytes, svc.windowBudget);
  }

  get isReady(): boolean {
    return this.ready;
  }

  get latestSeq(): number {
    return this.lastSeq;
  }

  get hasUpstreamFeed(): boolean {
    return this.unsubscribeFeed !== undefined;
  }

  /** Time from its last event to `now` (the sweep reads the clock once for every actor). */
  idleSinceEvent(now: number): number {
    return now - this.lastEventAt;
  }

  /** Owner: time from its last word on the feed to `now`; it ticks once this reaches OWNER_TICK_MS. */
  feedSilence(now: number): number {
    return now - this.feedSentAt;
  }

  /** Clients are here or on their way: live subscribers, or joins not settled yet. */
  get hasClients(): boolean {
    return this.subscribers.size + this.joinsInFlight + this.pendingJoins.length + (this.resumesOrNone?.pending ?? 0) > 0;
  }

  /**
   * Nothing here needs the actor: no clients (live, joining or being served history) and no state read
   * waiting for it. Such an actor on a node that no longer owns its match only costs: following the new
   * owner would take a feed subscription and a sync round trip, for no one.
   */
  get servesNobody(): boolean {
    return !this.hasClients && this.readyWaiters.length === 0 && this.seqWaiters.length === 0;
  }

  /** Starts in the role the ring gives this node. */
  start(): void {
    this.post(() => this.assumeRole());
  }

  /** Mailbox: messages run one at a time, in arrival order. */
  private post(fn: () => void | Promise<void>): void {
    this.tail = this.tail.then(() => this.step(fn)).catch((err) => this.svc.telemetry.warn("match actor step failed", { match: this.match, err: String(err) }));
  }

  /** Runs one mailbox step, noting when it began for the watchdog (most steps end synchronously). */
  private step(fn: () => void | Promise<void>): void | Promise<void> {
    this.stepStartedAt = Date.now();
    this.stuckReported = false;
    let running: void | Promise<void>;
    try {
      running = fn();
    } catch (err) {
      this.stepStartedAt = 0;
      throw err;
    }
    if (!running) {
      this.stepStartedAt = 0;
      return;
    }
    return running.finally(() => {
      this.stepStartedAt = 0;
    });
  }

  // ----- subscribers ---------------------------------------------------------------------------------

  /**
   * Adds a subscriber: snapshot (after === undefined) or exact resume after `after`. Settles once it is
   * live (see JoinOutcome). `trace`: the client request's trace context, which the join's span continues.
   */
  join(sub: MatchSubscriber, after: number | undefined, trace?: Context): Promise<JoinOutcome> {
    this.lastInterestAt = Date.now();
    const span = this.svc.telemetry.spans.startSubscribe(this.match, after, this.role, trace);
    return new Promise((settle) => {
      let settled = false;
      // The join's span lasts until the subscriber is live; a join settles once whatever happens.
      const resolve = (outcome: JoinOutcome): void => {
        if (settled) return;
        settled = true;
        span?.end();
        settle(outcome);
      };
      this.joinsInFlight++;
      this.post(() => {
        this.joinsInFlight--;
        if (this.role === "stopped") resolve(false);
        else if (!this.ready) this.pendingJoins.push({ sub, after, resolve, span });
        else return this.resumes.admit({ sub, after, resolve, span });
      });
    });
  }

  leave(sub: MatchSubscriber): void {
    this.subscribers.delete(sub);
  }

  private get resumes(): Resumes {
    this.resumesOrNone ??= new Resumes(this.resumeHost());
    return this.resumesOrNone;
  }

  /** What the resume module sees of this actor (resume.ts). */
  private resumeHost(): ResumeHost {
    const actor = this;
    return {
      match: this.match,
      svc: this.svc,
      get lastSeq() {
        return actor.lastSeq;
      },
      get windowStart() {
        return actor.window.coversFrom;
      },
      get stopped() {
        return actor.role === "stopped";
      },
      eventsAfter: (after) => this.eventsAfter(after),
      sendSnapshot: (sub) => this.sendSnapshot(sub),
      goLive: (sub) => this.goLive(sub),
      catchUpTo: (seq) => this.catchUpTo(seq),
      post: (fn) => this.post(fn),
      seedWindow: (events) => this.seedWindow(events),
    };
  }

  /** A subscriber that has everything so far: live, or, once the match has ended, told so. */
  private goLive(sub: MatchSubscriber): void {
    if (this.ended) sub.matchEnded();
    else this.subscribers.add(sub);
  }

  /** Events after `after` from memory, or undefined when memory does not reach back that far. */
  private eventsAfter(after: number): EncodedEvent[] | undefined {
    if (after >= this.lastSeq) return [];
    return this.window.after(after);
  }

  /**
   * History read from the log (every event of the match after the first one's `prev`, in order) becomes
   * the window when the window is empty and the history reaches the newest event applied: an actor
   * started from the index (a match kept without one while nobody watched) holds no events yet.
   */
  private seedWindow(events: EncodedEvent[]): void {
    if (this.window.coversFrom !== undefined || events.at(-1)?.seq !== this.lastSeq) return;
    for (const e of events) this.window.push(e);
  }

  private sendSnapshot(sub: MatchSubscriber): void {
    const cached = this.snapshotCache;
    const current =
      cached && cached.seq === this.lastSeq && cached.state === this.state ? cached : new MatchSnapshot(this.match, this.lastSeq, this.state, this.svc.logTag);
    this.snapshotCache = current;
    sub.sendSnapshot(current);
  }

  // ----- applying events ---------------------------------------------------------------------------

  private setState(state: Record<string, Json>, bytesAtMost: number | undefined): void {
    this.state = state;
    this.stateBytesAtMost = bytesAtMost;
  }

  /** `trace`: the context the event came with (the stored message's on the owner, the feed message's elsewhere). */
  private apply(event: MatchEvent, trace?: Context): void {
    if (event.seq <= this.lastSeq) return;
    if (this.ended) {
      // Publishing answers 409 once a match has ended; one stored anyway (a race through another node
      // within the index's second, or straight to NATS) stays in the log and is not streamed.
      this.svc.telemetry.warn("an event after the match's final event is not streamed", { match: this.match, seq: event.seq });
      return;
    }
    const spans = this.svc.telemetry.spans;
    // On the owner the event's ingest is the parent of its feed publish and its local fan-out.
    const ingest = this.role === "owner" ? spans.startIngest(this.match, event.seq, trace) : undefined;
    const parent = ingest ? ingest.context : trace;
    const patched = patchWithin({ state: this.state, bytesAtMost: this.stateBytesAtMost }, event.state, this.svc.maxStateBytes);
    if (patched) this.setState(patched.state, patched.bytesAtMost);
    else {
      // Publishing refuses such a patch (413); one that got past (a race within the index's second, or
      // published straight to NATS) is left out of the state, the same way on every node, and the event
      // is streamed without it.
      this.svc.telemetry.warn("a state patch that would pass MAX_STATE_BYTES is not applied", { match: this.match, seq: event.seq });
    }
    if (event.private) this.isPrivate = true;
    this.lastSeq = event.seq;
    this.lastEventAt = Date.now();
    const encoded = new EncodedEvent(event, this.svc.logTag);
    this.window.push(encoded);
    if (this.role === "owner") {
      const feed = spans.startFeedPublish(this.match, event.seq, this.epoch, parent);
      this.svc.publishFeed(this.match, { kind: "event", epoch: this.epoch, event }, feed?.context);
      this.feedSentAt = Date.now();
      feed?.end();
      this.svc.writeIndex(this.match, {
        seq: event.seq,
        ts: event.ts,
        state: this.state,
        ...(this.stateBytesAtMost !== undefined ? { stateBytesAtMost: this.stateBytesAtMost } : {}),
        ...(this.isPrivate ? { private: true } : {}),
        ...(event.final ? { ended: true } : {}),
      });
    }
    if (this.seqWaiters.length > 0) this.answerSeqWaiters();
    const fanOut = spans.startFanOut(this.match, event.seq, this.role, parent);
    const reached = this.subscribers.fanOut(encoded);
    fanOut?.end(reached);
    ingest?.end();
    this.svc.telemetry.delivered(reached, event.ts);
    if (event.final) {
      this.ended = true;
      for (const sub of this.subscribers) sub.matchEnded();
      this.subscribers.clear();
    }
    this.resumesOrNone?.caughtUp();
  }

  private answerSeqWaiters(): void {
    const due = this.seqWaiters.filter((w) => w.seq <= this.lastSeq);
    if (due.length === 0) return;
    this.seqWaiters = this.seqWaiters.filter((w) => w.seq > this.lastSeq);
    for (const w of due) w.answer();
  }

  /** Owner: its JetStream reader will get there. Follower: fill from JetStream now. */
  private catchUpTo(seq: number): void {
    if (this.role === "follower" && this.ready) this.post(() => this.repairGap(seq));
  }

  /** Applies the log's events after lastSeq through `throughSeq`, a page at a time. Throws if the log does. */
  private async fillGap(throughSeq: number): Promise<void> {
    let cursor = this.lastSeq;
    while (cursor < throughSeq && this.role !== "stopped") {
      const page = await this.svc.log.read(this.match, cursor, throughSeq, this.svc.historyPageBytes);
      for (const e of chain(page.events, this.lastSeq)) this.apply(e);
      if (page.through <= cursor) break;
      cursor = page.through;
    }
  }

  /** fillGap that never gives up: a failed read is retried with backoff until the gap is closed. */
  private async repairGap(throughSeq: number): Promise<void> {
    if (throughSeq <= this.lastSeq || this.role === "stopped") return;
    try {
      await this.fillGap(throughSeq);
      this.gapRetryMs = RETRY_MIN_MS;
      this.gapFailures = 0;
    } catch (err) {
      this.svc.telemetry.warn("filling a gap from the log failed; retrying", { match: this.match, through: throughSeq, err: String(err) });
      if (++this.gapFailures >= FAILURES_BEFORE_GIVING_UP_JOINS) this.resumesOrNone?.giveUpWaiting();
      clearTimeout(this.gapRetryTimer);
      this.gapRetryTimer = setTimeout(() => this.post(() => this.repairGap(throughSeq)), this.gapRetryMs);
      this.gapRetryMs = Math.min(RETRY_MAX_MS, this.gapRetryMs * 2);
    }
  }

  /**
   * Without an owner to sync with: the state from the match index (at most a second old), then the
   * log's events after it. Throws if the log does.
   */
  private async loadFromLog(): Promise<void> {
    const stored = await this.svc.log.lastSeqOf(this.match);
    if (!this.ready) {
      const entry = this.svc.readIndex(this.match);
      if (entry && entry.seq > this.lastSeq && entry.seq <= stored) {
        this.setState(entry.state, entry.stateBytesAtMost);
        this.lastSeq = entry.seq;
        this.isPrivate = entry.private === true;
        this.ended = entry.ended === true;
        this.window.clear();
      }
    }
    await this.fillGap(stored);
  }

  // ----- roles ------------------------------------------------------------------------------------

  /**
   * Its role already follows `owner`, the ring's owner of its match: the owner when that is this node,
   * else a follower of that node. A ring change that leaves its shard where it was has nothing for it.
   */
  settledUnder(owner: string | undefined): boolean {
    if (this.role === "stopped") return true;
    if (owner === undefined) return false;
    return owner === this.svc.selfId ? this.role === "owner" : this.role === "follower" && this.followedOwner === owner;
  }

  /** Re-evaluates the role after a membership or lease change. */
  reconsider(): void {
    this.post(() => this.assumeRole());
  }

  /** An owner acts only while the lease table shows it holding the lease at its own epoch. */
  private holdsLease(): boolean {
    const lease = this.svc.leaseHolder(this.shard);
    return lease !== undefined && lease.node === this.svc.selfId && lease.epoch === this.epoch;
  }

  private async assumeRole(): Promise<void> {
    if (this.role === "stopped") return;
    const owner = this.svc.ownerOf(this.match);
    if (owner === undefined) return; // not joined yet; membership will call again
    const shouldOwn = owner === this.svc.selfId;
    if (this.role === "owner") {
      // A lease taken over while this node was away, or released by whoever held it meanwhile, leaves
      // this node without one: it stops acting as owner and, if the ring still says so, takes a new one.
      const holds = this.holdsLease();
      if (shouldOwn && holds) {
        if (!this.jsFollower) await this.startReading();
        return;
      }
      await this.demote(holds ? "ring moved" : "lease lost");
    }
    if (shouldOwn) return this.tryToOwn();
    return this.followOwner(owner);
  }

  private async tryToOwn(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.followedOwner = this.svc.selfId;
    const epoch = await this.svc.acquireLease(this.match).catch((err: unknown) => {
      this.svc.telemetry.warn("taking a match lease failed; retrying", { match: this.match, err: String(err) });
      return undefined;
    });
    if (epoch === undefined) {
      // A live node still holds the lease (it releases when it sees the new ring) or NATS is away.
      // Meanwhile follow its feed and the log so local subscribers stay current.
      this.role = "follower";
      this.subscribeFeed();
      if (!this.ready) await this.becomeReadyFromLog();
      this.scheduleRetry();
      return;
    }
    this.retryDelay = RETRY_MIN_MS;
    this.stopFeed();
    this.role = "owner";
    this.epoch = epoch;
    this.svc.telemetry.ownershipMoved(this.match, "in", this.svc.selfId);
    await this.startReading();
  }

  /**
   * Owner: starts its JetStream reader. JetStream may not answer for a few seconds (a NATS server lost,
   * a stream leader being elected): the owner keeps its lease and tries again, so the match is not left
   * with an owner that reads nothing.
   */
  private async startReading(): Promise<void> {
    try {
      if (!this.ready) {
        const entry = this.svc.readIndex(this.match);
        if (entry && entry.seq > this.lastSeq) {
          this.setState(entry.state, entry.stateBytesAtMost);
          this.lastSeq = entry.seq;
          this.isPrivate = entry.private === true;
          this.ended = entry.ended === true;
        }
      }
      this.jsFollower = await this.svc.log.follow(this.match, this.lastSeq, (e, trace) => this.post(() => this.onLogged(e, trace)));
      this.retryDelay = RETRY_MIN_MS;
      const target = this.jsFollower.through;
      if (target <= this.lastSeq) this.becomeReady();
      else this.readyAt = target;
    } catch (err) {
      this.svc.telemetry.warn("owner could not start reading the match from JetStream; retrying", { match: this.match, err: String(err) });
      this.scheduleRetry();
    }
  }

  private onLogged(e: LoggedEvent, trace: Context | undefined): void {
    if (this.role !== "owner") return;
    this.apply({ ...e, prev: this.lastSeq }, trace);
    if (!this.ready && this.lastSeq >= this.readyAt) this.becomeReady();
  }

  private async demote(reason: "ring moved" | "lease lost" | "stopped"): Promise<void> {
    this.jsFollower?.stop();
    this.jsFollower = undefined;
    const epoch = this.epoch;
    this.role = "follower";
    // Ownership moved away from this node (to the ring's new owner, or to whoever fenced this epoch).
    this.svc.telemetry.ownershipMoved(this.match, "out", this.svc.ownerOf(this.match) ?? "unknown");
    this.svc.telemetry.debug("owner stepping down", { match: this.match, reason, epoch });
    // Only a lease still held is handed back (releasing is a compare-and-delete at its epoch anyway).
    if (reason !== "lease lost") {
      await this.svc.releaseLease(this.match, epoch).catch((err: unknown) => {
        this.svc.telemetry.warn("releasing a match lease failed (it lapses with membership)", { match: this.match, epoch, err: String(err) });
      });
    }
  }

  private subscribeFeed(): void {
    if (this.unsubscribeFeed) return;
    this.lastFeedAt = Date.now();
    this.unsubscribeFeed = this.svc.subscribeFeed(this.match, (m, trace) => this.post(() => this.onFeed(m, trace)));
  }

  private stopFeed(): void {
    this.unsubscribeFeed?.();
    this.unsubscribeFeed = undefined;
    this.feedBuffer = undefined;
  }

  private async followOwner(owner: string): Promise<void> {
    clearTimeout(this.retryTimer);
    this.role = "follower";
    this.followedOwner = owner;
    this.subscribeFeed();
    this.feedBuffer ??= [];
    let reply: SyncReply;
    try {
      reply = await this.svc.requestSync(owner, this.match, this.ready ? this.lastSeq : -1);
    } catch (err) {
      // The owner is away, paused or not ready yet: the log has everything it would have sent.
      this.svc.telemetry.debug("sync with owner failed; reading the log instead", { match: this.match, owner, err: String(err) });
      await this.becomeReadyFromLog();
      return;
    }
    if (this.role !== "follower" || this.svc.ownerOf(this.match) !== owner) return;
    this.retryDelay = RETRY_MIN_MS;
    this.epoch = Math.max(this.epoch, reply.epoch);
    this.lastFeedAt = Date.now();
    if (!this.ready) {
      this.setState(reply.state, undefined);
      this.lastSeq = reply.seq;
      this.isPrivate = reply.private;
      this.ended = reply.ended === true;
      this.window.clear();
      for (const e of reply.window) this.window.push(new EncodedEvent(e, this.svc.logTag));
    } else if (reply.seq > this.lastSeq) {
      const first = reply.window[0];
      if (first && first.prev <= this.lastSeq) for (const e of reply.window) this.apply(e);
      else await this.repairGap(reply.seq);
    }
    await this.drainFeedBuffer();
  }

  /**
   * Follower without a sync: loads the match from the log, then applies what the feed brought
   * meanwhile. If the log fails too, it tries again later (buffered feed messages wait, bounded).
   */
  private async becomeReadyFromLog(): Promise<void> {
    try {
      await this.loadFromLog();
    } catch (err) {
      this.svc.telemetry.warn("could not load the match from the log; retrying", { match: this.match, err: String(err) });
      this.scheduleRetry();
      return;
    }
    this.lastFeedAt = Date.now();
    await this.drainFeedBuffer();
  }

  private async drainFeedBuffer(): Promise<void> {
    const buffered = this.feedBuffer ?? [];
    this.feedBuffer = undefined;
    if (!this.ready) this.becomeReady();
    for (const b of buffered) await this.onFeed(b.msg, b.trace);
  }

  private async onFeed(m: FeedMessage, trace?: Context): Promise<void> {
    if (this.role !== "follower") return;
    if (m.epoch < this.epoch) return; // from an owner that has since been fenced off
    this.lastFeedAt = Date.now();
    if (this.feedBuffer) {
      if (this.feedBuffer.length < MAX_BUFFERED_FEED) this.feedBuffer.push({ msg: m, trace });
      return;
    }
    this.epoch = m.epoch;
    if (m.kind === "tick") {
      if (m.seq > this.lastSeq) await this.repairGap(m.seq);
      return;
    }
    const e = m.event;
    if (e.seq <= this.lastSeq) return;
    // A gap: read the log through this very event, so a failed read's retry brings it too.
    if (e.prev > this.lastSeq) return this.repairGap(e.seq);
    this.apply(e, trace);
  }

  private scheduleRetry(): void {
    if (!this.ready && ++this.readyFailures >= FAILURES_BEFORE_GIVING_UP_JOINS) {
      for (const j of this.pendingJoins) j.resolve(false);
      this.pendingJoins = [];
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.post(() => this.assumeRole()), this.retryDelay);
    this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2);
  }

  private becomeReady(): void {
    this.ready = true;
    this.readyFailures = 0;
    const joins = this.pendingJoins;
    this.pendingJoins = [];
    for (const j of joins) this.post(() => this.resumes.admit(j));
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) this.post(() => w(true));
  }

  /**
   * Called by the hub's sweep. An owner that no longer holds its lease steps down. A follower serving
   * clients re-syncs when the ring names another owner, and reads the log itself while the owner is
   * silent, so no stream sits on heartbeats while its match has events it was not sent.
   */
  watchdog(now: number): void {
    if (this.stepStartedAt > 0 && !this.stuckReported && now - this.stepStartedAt > STUCK_STEP_MS) {
      this.stuckReported = true;
      this.svc.telemetry.warn("match actor step still running; its mailbox waits", {
        match: this.match,
        role: this.role,
        ready: this.ready,
        lastSeq: this.lastSeq,
        runningMs: now - this.stepStartedAt,
      });
    }
    if (this.role === "owner") {
      if (!this.holdsLease()) this.reconsider();
      return;
    }
    if (this.role !== "follower" || !this.ready || !this.hasClients) return;
    const owner = this.svc.ownerOf(this.match);
    if (owner !== undefined && owner !== this.followedOwner) {
      this.reconsider();
      return;
    }
    if (now - this.lastFeedAt > FEED_SILENCE_MS && now - this.lastLogCheckAt > LOG_CHECK_MS) {
      this.lastLogCheckAt = now;
      this.post(() => this.checkLog());
    }
  }

  private async checkLog(): Promise<void> {
    if (this.role !== "follower") return;
    const stored = await this.svc.log.lastSeqOf(this.match);
    if (stored > this.lastSeq) {
      this.svc.telemetry.debug("owner silent; catching up from the log", { match: this.match, from: this.lastSeq, to: stored });
      await this.repairGap(stored);
    }
  }

  // ----- serving other nodes ------------------------------------------------------------------------

  /**
   * Answers another node's sync: at once, undefined unless this node is the match's ready owner (a
   * follower asking a node that is still taking over reads the log instead of waiting).
   */
  sync(): Promise<SyncReply | undefined> {
    this.lastInterestAt = this.remoteInterestAt = Date.now();
    return new Promise((resolve) => {
      this.post(() => resolve(this.role === "owner" && this.ready && this.holdsLease() ? this.syncReply() : undefined));
    });
  }

  private syncReply(): SyncReply {
    return {
      epoch: this.epoch,
      seq: this.lastSeq,
      state: this.state,
      window: this.window.newest(SYNC_WINDOW_EVENTS).map((e) => e.decode()),
      private: this.isPrivate,
      ...(this.ended ? { ended: true } : {}),
    };
  }

  /** Owner: a follower node says it still has subscribers here. */
  noteRemoteInterest(): void {
    this.lastInterestAt = this.remoteInterestAt = Date.now();
  }

  /** Owner heartbeat on the feed so a follower notices a lost final event. */
  tick(): void {
    if (this.role !== "owner" || !this.ready) return;
    this.svc.publishFeed(this.match, { kind: "tick", epoch: this.epoch, seq: this.lastSeq });
    this.feedSentAt = Date.now();
  }

  /**
   * The match's state, once this actor has applied at least event `atLeast` (what JetStream holds
   * now), so a read right after a 201 sees that event. Waits at most STATE_CATCH_UP_MS; past that it
   * answers with what it has rather than hang.
   */
  snapshot(atLeast = 0): Promise<{ seq: number; state: Record<string, Json>; private: boolean; ended: boolean }> {
    this.lastInterestAt = Date.now();
    return new Promise((resolve) => {
      const answer = () => resolve({ seq: this.lastSeq, state: this.state, private: this.isPrivate, ended: this.ended });
      const whenCaughtUp = () => {
        if (this.lastSeq >= atLeast) return answer();
        const waiter = {
          seq: atLeast,
          answer: () => {
            clearTimeout(timer);
            answer();
          },
        };
        const timer = setTimeout(() => {
          this.seqWaiters = this.seqWaiters.filter((w) => w !== waiter);
          answer();
        }, STATE_CATCH_UP_MS);
        this.seqWaiters.push(waiter);
        this.catchUpTo(atLeast);
      };
      this.post(() => {
        if (this.ready) whenCaughtUp();
        else this.readyWaiters.push((ready) => (ready ? whenCaughtUp() : answer()));
      });
    });
  }

  get private(): boolean {
    return this.isPrivate;
  }

  /**
   * Once the actor is ready: the seq of the match's final event if it has ended, else undefined (a
   * resume at or after it gets 204, so EventSource stops for good). Undefined if the actor stops first.
   */
  finalSeq(): Promise<number | undefined> {
    this.lastInterestAt = Date.now();
    return new Promise((resolve) => {
      const answer = (ready: boolean) => resolve(ready && this.ended ? this.lastSeq : undefined);
      this.post(() => {
        if (this.role === "stopped") answer(false);
        else if (this.ready) answer(true);
        else this.readyWaiters.push(answer);
      });
    });
  }

  /**
   * Stops the actor: no subscribers are left, or the node shuts down or starts over. Every waiter is
   * settled: joins not yet live get `false` (their streams end and resume elsewhere), state reads get
   * what the actor has, and live subscribers are let go (`actorStopped`), never left on a silent actor.
   */
  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.post(async () => {
        clearTimeout(this.retryTimer);
        clearTimeout(this.gapRetryTimer);
        this.stopFeed();
        if (this.role === "owner") await this.demote("stopped");
        this.role = "stopped";
        for (const j of this.pendingJoins) j.resolve(false);
        this.pendingJoins = [];
        this.resumesOrNone?.stop();
        for (const sub of this.subscribers) sub.actorStopped();
        this.subscribers.clear();
        for (const w of this.readyWaiters) w(false);
        this.readyWaiters = [];
        for (const w of this.seqWaiters) w.answer();
        this.seqWaiters = [];
        // Its bytes go back to the node's window budget now rather than when the window is collected.
        this.window.clear();
        resolve();
      });
    });
  }
}
