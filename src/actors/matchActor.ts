/**
 * MatchActor: one per active match per node, processing one message at a time from its mailbox.
 *
 * On the match's owner it is the single reader of the match's JetStream subject: it folds the state,
 * keeps a window of recent events, fans them out to this node's subscribers and publishes them on the
 * match's feed for the other nodes. Elsewhere it holds this node's one upstream feed of the match and
 * fans that out. Either way every event is applied exactly once and in order: an event is accepted only
 * when its `prev` is the last seq applied; anything else is a gap, filled from JetStream before going on.
 */
import type { Context } from "@opentelemetry/api";
import type { MatchEvent } from "../match/event.ts";
import { applyStatePatch, type Json } from "../match/mergePatch.ts";
import type { Follower, LoggedEvent } from "../bus/eventLog.ts";
import { EncodedEvent } from "./encodedEvent.ts";
import { EventWindow } from "./eventWindow.ts";
import { SubscriberSet, type MatchSubscriber } from "./subscriber.ts";
import { MatchSnapshot } from "./matchSnapshot.ts";
import type { FeedMessage, MatchServices, SyncReply } from "./services.ts";
import type { SubscribeSpan } from "../telemetry/matchSpans.ts";

export type Role = "owner" | "follower" | "stopped";

/** Retry pacing while an owner is unreachable or a lease is still held by a live node. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;
/** Feed messages buffered while a follower syncs; past this it drops them and syncs again. */
const MAX_BUFFERED_FEED = 10_000;
/** Events sent in a sync reply: enough for reconnect storms to be served from memory on any node. */
const SYNC_WINDOW_EVENTS = 500;
/** Longest a state read waits for this node to apply what JetStream already acknowledged. */
const STATE_CATCH_UP_MS = 2000;

interface PendingJoin {
  sub: MatchSubscriber;
  after: number | undefined;
  resolve: () => void;
  /** Present when tracing is on; ended by `resolve`. */
  span?: SubscribeSpan;
}

export class MatchActor {
  role: Role = "follower";
  private epoch = 0;
  private ready = false;
  private lastSeq = 0;
  private state: Record<string, Json> = {};
  private isPrivate = false;
  private readonly window: EventWindow;
  readonly subscribers = new SubscriberSet();
  private tail: Promise<void> = Promise.resolve();
  private pendingJoins: PendingJoin[] = [];
  /** Subscribers whose resume id is ahead of what this node has applied yet (feed lag). */
  private waitingForSeq: { sub: MatchSubscriber; after: number }[] = [];
  /** Resumers waiting for a JetStream read; `sent`: what earlier reads already replayed to them. */
  private historyQueue: { sub: MatchSubscriber; after: number; sent: number }[] = [];
  private historyReading = false;
  private syncWaiters: ((r: SyncReply | undefined) => void)[] = [];
  /** State reads waiting for this actor to reach a seq JetStream already holds. */
  private seqWaiters: { seq: number; answer: () => void }[] = [];
  /** The last snapshot sent, reused while the state has not moved (a reconnect storm shares it). */
  private snapshotCache: MatchSnapshot | undefined;
  private jsFollower: Follower | undefined;
  private unsubscribeFeed: (() => void) | undefined;
  private feedBuffer: { msg: FeedMessage; trace: Context | undefined }[] | undefined;
  private retryDelay = RETRY_MIN_MS;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private lastEventAt = Date.now();
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

  constructor(
    readonly match: string,
    private readonly svc: MatchServices,
  ) {
    this.window = new EventWindow(svc.windowEvents);
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

  get idleSinceEvent(): number {
    return Date.now() - this.lastEventAt;
  }

  /** Starts in the role the ring gives this node. */
  start(): void {
    this.post(() => this.assumeRole());
  }

  /** Mailbox: messages run one at a time, in arrival order. */
  private post(fn: () => void | Promise<void>): void {
    this.tail = this.tail.then(fn).catch((err) => this.svc.telemetry.warn("match actor step failed", { match: this.match, err }));
  }

  // ----- subscribers ---------------------------------------------------------------------------------

  /**
   * Adds a subscriber: snapshot (after === undefined) or exact resume after `after`. Resolves once it is
   * live. `trace`: the client request's trace context, which the join's span continues.
   */
  join(sub: MatchSubscriber, after: number | undefined, trace?: Context): Promise<void> {
    this.lastInterestAt = Date.now();
    const span = this.svc.telemetry.spans.startSubscribe(this.match, after, this.role, trace);
    return new Promise((settle) => {
      // The join's span lasts until the subscriber is live.
      const resolve = span
        ? () => {
            span.end();
            settle();
          }
        : settle;
      this.post(() => {
        if (!this.ready) this.pendingJoins.push({ sub, after, resolve, span });
        else return this.admit({ sub, after, resolve, span });
      });
    });
  }

  leave(sub: MatchSubscriber): void {
    this.subscribers.delete(sub);
  }

  private async admit(j: PendingJoin): Promise<void> {
    const { sub, after } = j;
    if (!sub.open) return j.resolve();
    if (after === undefined) {
      j.span?.startsWith("snapshot");
      this.sendSnapshot(sub);
    } else if (after > this.lastSeq) {
      // Either this node lags the owner by a moment, or the id is unknown. JetStream decides.
      const stored = await this.svc.log.lastSeqOf(this.match);
      if (after <= stored) {
        j.span?.startsWith("waiting");
        this.waitingForSeq.push({ sub, after });
        this.catchUpTo(stored);
        return j.resolve();
      }
      j.span?.startsWith("snapshot");
      this.svc.telemetry.replay("snapshot", 0);
      this.sendSnapshot(sub);
    } else {
      const fromWindow = this.eventsAfter(after);
      if (fromWindow) {
        j.span?.startsWith("memory");
        const replay = this.svc.telemetry.spans.startReplay(this.match, "memory", after, this.lastSeq, j.span?.context);
        let sent = 0;
        for (const e of fromWindow) if (sub.sendEvent(e)) sent++;
        replay?.end(sent, 1);
        this.svc.telemetry.replay("memory", sent);
      } else if (after + 1 < (await this.svc.log.firstSeq())) {
        // Older than retention: some of the events after it may be gone.
        j.span?.startsWith("snapshot");
        this.svc.telemetry.replay("snapshot", 0);
        this.sendSnapshot(sub);
      } else {
        j.span?.startsWith("jetstream");
        this.historyQueue.push({ sub, after, sent: 0 });
        this.readHistory(j.span?.context);
        return j.resolve();
      }
    }
    this.subscribers.add(sub);
    j.resolve();
  }

  /** Events after `after` from memory, or undefined when memory does not reach back that far. */
  private eventsAfter(after: number): EncodedEvent[] | undefined {
    if (after >= this.lastSeq) return [];
    return this.window.after(after);
  }

  private sendSnapshot(sub: MatchSubscriber): void {
    const cached = this.snapshotCache;
    const current = cached && cached.seq === this.lastSeq && cached.state === this.state ? cached : new MatchSnapshot(this.match, this.lastSeq, this.state);
    this.snapshotCache = current;
    sub.sendSnapshot(current);
  }

  /**
   * Serves resumes from before the window out of JetStream, through one reader per match at a time
   * (invariant 8): everyone queued is served by the same read, which starts at the oldest id asked.
   */
  private readHistory(trace?: Context): void {
    if (this.historyReading || this.historyQueue.length === 0) return;
    this.historyReading = true;
    const from = Math.min(...this.historyQueue.map((q) => q.after));
    const through = this.window.coversFrom ?? this.lastSeq;
    // One span per read, however many resumers it serves; the join that started it is its parent.
    const replay = this.svc.telemetry.spans.startReplay(this.match, "jetstream", from, through, trace);
    void this.svc.log
      .read(this.match, from, through)
      .then((events) => {
        this.post(() => {
          this.historyReading = false;
          const encoded = chain(events, from).map((e) => new EncodedEvent(e));
          replay?.end(encoded.length, this.historyQueue.length);
          const queue = this.historyQueue;
          this.historyQueue = [];
          for (const q of queue) {
            if (!q.sub.open) continue;
            // Queued during the read with an older id: this read started after it, so wait for the next.
            if (q.after < from) {
              this.historyQueue.push(q);
              continue;
            }
            let sent = q.sent;
            for (const e of encoded) {
              if (e.seq > q.sub.lastSeq && e.seq > q.after && q.sub.sendEvent(e)) sent++;
            }
            const rest = this.eventsAfter(Math.max(q.after, q.sub.lastSeq, through));
            if (rest) {
              for (const e of rest) {
                if (e.seq > q.sub.lastSeq && q.sub.sendEvent(e)) sent++;
              }
              this.subscribers.add(q.sub);
              // One request per resumer (however many reads served it), with every event it was sent.
              this.svc.telemetry.replay("jetstream", sent);
            } else {
              // The window moved on during the read: go round again from where this one got to.
              this.historyQueue.push({ sub: q.sub, after: Math.max(q.after, q.sub.lastSeq, through), sent });
            }
          }
          this.readHistory();
        });
      })
      .catch((err) => {
        replay?.fail(err);
        this.post(() => {
          this.historyReading = false;
          this.svc.telemetry.warn("history read failed; retrying", { match: this.match, err });
          setTimeout(() => this.post(() => this.readHistory()), RETRY_MAX_MS);
        });
      });
  }

  // ----- applying events ---------------------------------------------------------------------------

  /** `trace`: the context the event came with (the stored message's on the owner, the feed message's elsewhere). */
  private apply(event: MatchEvent, trace?: Context): void {
    if (event.seq <= this.lastSeq) return;
    const spans = this.svc.telemetry.spans;
    // On the owner the event's ingest is the parent of its feed publish and its local fan-out.
    const ingest = this.role === "owner" ? spans.startIngest(this.match, event.seq, trace) : undefined;
    const parent = ingest ? ingest.context : trace;
    this.state = applyStatePatch(this.state, event.state);
    if (event.private) this.isPrivate = true;
    this.lastSeq = event.seq;
    this.lastEventAt = Date.now();
    const encoded = new EncodedEvent(event);
    this.window.push(encoded);
    if (this.role === "owner") {
      const feed = spans.startFeedPublish(this.match, event.seq, this.epoch, parent);
      this.svc.publishFeed(this.match, { kind: "event", epoch: this.epoch, event }, feed?.context);
      feed?.end();
      this.svc.writeIndex(this.match, { seq: event.seq, ts: event.ts, state: this.state, ...(this.isPrivate ? { private: true } : {}) });
    }
    if (this.seqWaiters.length > 0) this.answerSeqWaiters();
    const fanOut = spans.startFanOut(this.match, event.seq, this.role, parent);
    const reached = this.subscribers.fanOut(encoded);
    fanOut?.end(reached);
    ingest?.end();
    this.svc.telemetry.delivered(reached, event.ts);
    if (this.waitingForSeq.length > 0) this.releaseWaiting();
  }

  private releaseWaiting(): void {
    const still: typeof this.waitingForSeq = [];
    for (const w of this.waitingForSeq) {
      if (!w.sub.open) continue;
      if (w.after > this.lastSeq) {
        still.push(w);
        continue;
      }
      const events = this.eventsAfter(Math.max(w.after, w.sub.lastSeq)) ?? [];
      let sent = 0;
      for (const e of events) {
        if (e.seq > w.sub.lastSeq && w.sub.sendEvent(e)) sent++;
      }
      this.subscribers.add(w.sub);
      // A resume that waited for this node to catch up is served from memory like any other.
      this.svc.telemetry.replay("memory", sent);
    }
    this.waitingForSeq = still;
  }

  private answerSeqWaiters(): void {
    const due = this.seqWaiters.filter((w) => w.seq <= this.lastSeq);
    if (due.length === 0) return;
    this.seqWaiters = this.seqWaiters.filter((w) => w.seq > this.lastSeq);
    for (const w of due) w.answer();
  }

  /** Owner: its JetStream reader will get there. Follower: fill from JetStream now. */
  private catchUpTo(seq: number): void {
    if (this.role === "follower" && this.ready) this.post(() => this.fillGap(seq));
  }

  private async fillGap(throughSeq: number): Promise<void> {
    if (throughSeq <= this.lastSeq) return;
    const events = await this.svc.log.read(this.match, this.lastSeq, throughSeq);
    for (const e of chain(events, this.lastSeq)) this.apply(e);
  }

  // ----- roles ------------------------------------------------------------------------------------

  /** Re-evaluates the role after a membership or lease change. */
  reconsider(): void {
    this.post(() => this.assumeRole());
  }

  private async assumeRole(): Promise<void> {
    if (this.role === "stopped") return;
    const owner = this.svc.ownerOf(this.match);
    if (owner === undefined) return; // not joined yet; membership will call again
    const shouldOwn = owner === this.svc.selfId;
    if (this.role === "owner") {
      const lease = this.svc.leaseEpoch(this.match);
      const fenced = lease !== undefined && lease !== this.epoch;
      if (shouldOwn && !fenced) {
        if (!this.jsFollower) await this.startReading();
        return;
      }
      await this.demote(fenced ? "fenced" : "ring moved");
      if (!shouldOwn) return this.followOwner(owner);
    }
    if (shouldOwn) return this.tryToOwn();
    return this.followOwner(owner);
  }

  private async tryToOwn(): Promise<void> {
    clearTimeout(this.retryTimer);
    const epoch = await this.svc.acquireLease(this.match).catch(() => undefined);
    if (epoch === undefined) {
      // A live node still holds the lease (it releases when it sees the new ring) or NATS is away.
      // Until then keep following the feed so local subscribers stay current.
      if (!this.unsubscribeFeed && this.ready) this.subscribeFeed();
      this.scheduleRetry();
      return;
    }
    this.retryDelay = RETRY_MIN_MS;
    this.stopFeed();
    this.role = "owner";
    this.epoch = epoch;
    this.svc.telemetry.ownershipMoved(this.match, this.svc.selfId);
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
        const entry = await this.svc.readIndex(this.match);
        if (entry && entry.seq > this.lastSeq) {
          this.state = entry.state;
          this.lastSeq = entry.seq;
          this.isPrivate = entry.private === true;
        }
      }
      const target = await this.svc.log.lastSeqOf(this.match);
      this.jsFollower = await this.svc.log.follow(this.match, this.lastSeq, (e, trace) => this.post(() => this.onLogged(e, trace)));
      this.retryDelay = RETRY_MIN_MS;
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

  private async demote(reason: string): Promise<void> {
    this.jsFollower?.stop();
    this.jsFollower = undefined;
    const epoch = this.epoch;
    this.role = "follower";
    // Ownership moved away from this node (to the ring's new owner, or to whoever fenced this epoch).
    this.svc.telemetry.ownershipMoved(this.match, this.svc.ownerOf(this.match) ?? "unknown");
    this.svc.telemetry.debug("owner stepping down", { match: this.match, reason, epoch });
    if (reason !== "fenced") await this.svc.releaseLease(this.match, epoch).catch(() => {});
  }

  private subscribeFeed(): void {
    if (this.unsubscribeFeed) return;
    this.feedBuffer = [];
    this.unsubscribeFeed = this.svc.subscribeFeed(this.match, (m, trace) => this.post(() => this.onFeed(m, trace)));
  }

  private stopFeed(): void {
    this.unsubscribeFeed?.();
    this.unsubscribeFeed = undefined;
    this.feedBuffer = undefined;
  }

  private async followOwner(owner: string): Promise<void> {
    this.role = "follower";
    this.subscribeFeed();
    this.feedBuffer ??= [];
    let reply: SyncReply;
    try {
      reply = await this.svc.requestSync(owner, this.match, this.ready ? this.lastSeq : -1);
    } catch (err) {
      this.svc.telemetry.debug("sync with owner failed; retrying", { match: this.match, owner, err: String(err) });
      this.scheduleRetry();
      return;
    }
    if (this.role !== "follower" || this.svc.ownerOf(this.match) !== owner) return;
    this.retryDelay = RETRY_MIN_MS;
    this.epoch = Math.max(this.epoch, reply.epoch);
    if (!this.ready) {
      this.state = reply.state;
      this.lastSeq = reply.seq;
      this.isPrivate = reply.private;
      this.window.clear();
      for (const e of reply.window) this.window.push(new EncodedEvent(e));
    } else if (reply.seq > this.lastSeq) {
      const first = reply.window[0];
      if (first && first.prev <= this.lastSeq) for (const e of reply.window) this.apply(e);
      else await this.fillGap(reply.seq);
    }
    const buffered = this.feedBuffer ?? [];
    this.feedBuffer = undefined;
    if (!this.ready) this.becomeReady();
    for (const b of buffered) await this.onFeed(b.msg, b.trace);
  }

  private async onFeed(m: FeedMessage, trace?: Context): Promise<void> {
    if (this.role !== "follower") return;
    if (m.epoch < this.epoch) return; // from an owner that has since been fenced off
    if (this.feedBuffer) {
      if (this.feedBuffer.length >= MAX_BUFFERED_FEED) {
        this.feedBuffer = [];
        this.scheduleRetry();
      }
      this.feedBuffer.push({ msg: m, trace });
      return;
    }
    this.epoch = m.epoch;
    if (m.kind === "tick") {
      if (m.seq > this.lastSeq) await this.fillGap(m.seq);
      return;
    }
    const e = m.event;
    if (e.seq <= this.lastSeq) return;
    if (e.prev > this.lastSeq) await this.fillGap(e.prev);
    this.apply(e, trace);
  }

  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.post(() => this.assumeRole()), this.retryDelay);
    this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2);
  }

  private becomeReady(): void {
    this.ready = true;
    const joins = this.pendingJoins;
    this.pendingJoins = [];
    for (const j of joins) this.post(() => this.admit(j));
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) this.post(() => w(this.syncReply()));
  }

  // ----- serving other nodes ------------------------------------------------------------------------

  /** Answers another node's sync once this node owns the match and has caught up; undefined if it is not the owner. */
  sync(): Promise<SyncReply | undefined> {
    this.lastInterestAt = this.remoteInterestAt = Date.now();
    return new Promise((resolve) => {
      this.post(() => {
        if (this.role === "owner" && this.ready) resolve(this.syncReply());
        else if (this.svc.ownerOf(this.match) === this.svc.selfId && this.role !== "stopped") this.syncWaiters.push(resolve);
        else resolve(undefined);
      });
    });
  }

  private syncReply(): SyncReply {
    return {
      epoch: this.epoch,
      seq: this.lastSeq,
      state: this.state,
      window: this.window.newest(SYNC_WINDOW_EVENTS).map((e) => e.event),
      private: this.isPrivate,
    };
  }

  /** Owner: a follower node says it still has subscribers here. */
  noteRemoteInterest(): void {
    this.lastInterestAt = this.remoteInterestAt = Date.now();
  }

  /** Owner heartbeat on the feed so a follower notices a lost final event. */
  tick(): void {
    if (this.role === "owner" && this.ready) this.svc.publishFeed(this.match, { kind: "tick", epoch: this.epoch, seq: this.lastSeq });
  }

  /** A snapshot of the state for `GET /matches/{match}`; waits until ready. */
  /**
   * The match's state, once this actor has applied at least event `atLeast` (what JetStream holds
   * now), so a read right after a 201 sees that event. Waits at most STATE_CATCH_UP_MS; past that it
   * answers with what it has rather than hang.
   */
  snapshot(atLeast = 0): Promise<{ seq: number; state: Record<string, Json>; private: boolean }> {
    this.lastInterestAt = Date.now();
    return new Promise((resolve) => {
      const answer = () => resolve({ seq: this.lastSeq, state: this.state, private: this.isPrivate });
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
        else this.syncWaiters.push(() => whenCaughtUp());
      });
    });
  }

  get private(): boolean {
    return this.isPrivate;
  }

  /** Stops the actor: no subscribers are left, or the node shuts down. */
  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.post(async () => {
        clearTimeout(this.retryTimer);
        this.stopFeed();
        if (this.role === "owner") await this.demote("stopped");
        this.role = "stopped";
        for (const w of this.syncWaiters) w(undefined);
        this.syncWaiters = [];
        for (const w of this.seqWaiters) w.answer();
        this.seqWaiters = [];
        resolve();
      });
    });
  }
}

/** Gives events read in order from the log their `prev` links, starting after `from`. */
function chain(events: LoggedEvent[], from: number): MatchEvent[] {
  let prev = from;
  return events.map((e) => {
    const out: MatchEvent = { ...e, prev };
    prev = e.seq;
    return out;
  });
}
