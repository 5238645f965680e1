/**
 * Resume: how a match actor admits a subscriber, in one place (Centrifuge keeps recovery in one place
 * too). A join gets a snapshot, or every event after its id: from the actor's window of recent events,
 * or, from before the window, out of the log a page at a time (about one client buffer; one read per
 * match at a time serves every resumer, invariant 8 of docs/design.md), or, when the id is ahead of
 * what this node has applied, once the actor catches up. The splice to live is the actor's `goLive`,
 * called in the same mailbox turn as the last replayed event, so nothing falls between.
 *
 * Runs inside the actor's mailbox: every method is called from it, and the log's answers come back
 * through `post`. Every join it holds is settled on every path (served, failed, stopped).
 */
import type { Context } from "@opentelemetry/api";
import type { MatchEvent } from "../match/event.ts";
import type { LogPage, LoggedEvent } from "../bus/matchLog.ts";
import { EncodedEvent } from "./encodedEvent.ts";
import type { MatchSubscriber } from "./subscriber.ts";
import type { MatchServices } from "./services.ts";
import type { SubscribeSpan } from "../telemetry/matchSpans.ts";

/** Retry pacing of a failed history read. */
const READ_RETRY_MIN_MS = 100;
const READ_RETRY_MAX_MS = 2000;
/**
 * Failed attempts in a row after which the joins waiting on them are settled `false`: their streams
 * end and the clients resume by id, perhaps on a node that can serve them, instead of waiting on a log
 * this node cannot read. The actor itself keeps retrying.
 */
export const FAILURES_BEFORE_GIVING_UP_JOINS = 3;

/**
 * A join settles `true` once its subscriber is live (or its replay filled the client's buffer, which
 * ends the stream as a page), `false` when the actor could not serve it (the log failed, the actor
 * stopped): the caller then ends the stream so the client resumes by id, and frees what it holds.
 */
export type JoinOutcome = boolean;

export interface PendingJoin {
  sub: MatchSubscriber;
  after: number | undefined;
  resolve: (outcome: JoinOutcome) => void;
  /** Present when tracing is on; ended by `resolve`. */
  span?: SubscribeSpan;
}

/** A resume being served from the log, page by page; `after` moves forward as pages are sent. */
interface HistoryResume {
  join: PendingJoin;
  after: number;
  /** Events sent to it so far, for the replay metric. */
  sent: number;
}

/** What resumes need of their actor. */
export interface ResumeHost {
  readonly match: string;
  readonly svc: MatchServices;
  /** The last seq the actor applied. */
  readonly lastSeq: number;
  /** The seq before the oldest event of the window (events after it are in memory), if any. */
  readonly windowStart: number | undefined;
  /** Events after `after` from memory, or undefined when memory does not reach back that far. */
  eventsAfter(after: number): EncodedEvent[] | undefined;
  sendSnapshot(sub: MatchSubscriber): void;
  /** The subscriber has everything so far: live from now on (or told the match ended). */
  goLive(sub: MatchSubscriber): void;
  /** Asks the actor to catch up to `seq` (a follower reads the log; an owner's reader gets there). */
  catchUpTo(seq: number): void;
  /** Runs `fn` in the actor's mailbox. */
  post(fn: () => void | Promise<void>): void;
  /** History just read from the log, in order: kept as the window if it is empty and this reaches lastSeq. */
  seedWindow(events: EncodedEvent[]): void;
  readonly stopped: boolean;
}

export class Resumes {
  /** Resumes whose id is ahead of what this node has applied yet (feed lag): settled once it catches up. */
  private waitingForSeq: { join: PendingJoin; after: number }[] = [];
  /** Resumes from before the window, served from the log one page at a time by one read. */
  private historyQueue: HistoryResume[] = [];
  private historyReading = false;
  private historyRetryMs = READ_RETRY_MIN_MS;
  private historyFailures = 0;
  private historyTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly host: ResumeHost) {}

  /** Joins not settled yet. */
  get pending(): number {
    return this.waitingForSeq.length + this.historyQueue.length;
  }

  /** Admits a join; a log failure answers it `false` (the caller ends the stream to be resumed). */
  async admit(j: PendingJoin): Promise<void> {
    try {
      await this.admitOrQueue(j);
    } catch (err) {
      this.host.svc.telemetry.warn("could not admit a subscriber; its stream ends so it resumes", { match: this.host.match, err: String(err) });
      j.resolve(false);
    }
  }

  private async admitOrQueue(j: PendingJoin): Promise<void> {
    const h = this.host;
    const { telemetry, log } = h.svc;
    const { sub, after } = j;
    if (!sub.open) return j.resolve(true);
    if (after === undefined) {
      j.span?.startsWith("snapshot");
      h.sendSnapshot(sub);
    } else if (after > h.lastSeq) {
      // Either this node lags the owner by a moment, or the id is unknown. JetStream decides.
      const stored = await log.lastSeqOf(h.match);
      if (after <= stored) {
        j.span?.startsWith("waiting");
        this.waitingForSeq.push({ join: j, after });
        h.catchUpTo(stored);
        return;
      }
      j.span?.startsWith("snapshot");
      telemetry.replay("snapshot", 0);
      h.sendSnapshot(sub);
    } else {
      const fromWindow = h.eventsAfter(after);
      if (fromWindow) {
        j.span?.startsWith("memory");
        const replay = telemetry.spans.startReplay(h.match, "memory", after, h.lastSeq, j.span?.context);
        let sent = 0;
        for (const e of fromWindow) if (sub.sendEvent(e)) sent++;
        replay?.end(sent, 1);
        telemetry.replay("memory", sent);
      } else if (after + 1 < (await log.firstSeq())) {
        // Older than retention: some of the events after it may be gone.
        j.span?.startsWith("snapshot");
        telemetry.replay("snapshot", 0);
        h.sendSnapshot(sub);
      } else {
        j.span?.startsWith("jetstream");
        this.historyQueue.push({ join: j, after, sent: 0 });
        this.readHistory(j.span?.context);
        return;
      }
    }
    h.goLive(sub);
    j.resolve(true);
  }

  /**
   * Serves resumes from before the window out of the log, one page (about one client buffer) at a
   * time, through one read per match at a time: everyone queued is served by the same page, which
   * starts at the oldest position asked. A client whose buffer fills takes what it got (its stream
   * ends as a page and it comes back for the rest); one that reaches the window goes live.
   */
  private readHistory(trace?: Context): void {
    const h = this.host;
    if (this.historyReading || this.historyQueue.length === 0 || h.stopped) return;
    this.historyReading = true;
    let from = Number.POSITIVE_INFINITY;
    for (const q of this.historyQueue) from = Math.min(from, q.after);
    const through = h.windowStart ?? h.lastSeq;
    if (from >= through) {
      this.historyReading = false;
      this.serveHistoryPage({ events: [], through }, from);
      return;
    }
    // One span per page, however many resumers it serves; the join that started it is its parent.
    const replay = h.svc.telemetry.spans.startReplay(h.match, "jetstream", from, through, trace);
    h.svc.log.read(h.match, from, through, h.svc.historyPageBytes).then(
      (page) => {
        replay?.end(page.events.length, this.historyQueue.length);
        h.post(() => {
          this.historyReading = false;
          this.historyRetryMs = READ_RETRY_MIN_MS;
          this.historyFailures = 0;
          this.serveHistoryPage(page, from);
        });
      },
      (err) => {
        replay?.fail(err);
        h.post(() => {
          this.historyReading = false;
          h.svc.telemetry.warn("history read failed; retrying", { match: h.match, err: String(err) });
          if (++this.historyFailures >= FAILURES_BEFORE_GIVING_UP_JOINS) {
            for (const q of this.historyQueue) q.join.resolve(false);
            this.historyQueue = [];
            return;
          }
          clearTimeout(this.historyTimer);
          this.historyTimer = setTimeout(() => h.post(() => this.readHistory()), this.historyRetryMs);
          this.historyRetryMs = Math.min(READ_RETRY_MAX_MS, this.historyRetryMs * 2);
        });
      },
    );
  }

  private serveHistoryPage(page: LogPage, from: number): void {
    const h = this.host;
    if (h.stopped) return;
    const encoded = chain(page.events, from).map((e) => new EncodedEvent(e, h.svc.logTag));
    // An actor started for a match nobody watched begins with no window: the first resumes of a
    // reconnect read the log, and what they read serves the rest from memory.
    if (encoded.length > 0) h.seedWindow(encoded);
    const queue = this.historyQueue;
    this.historyQueue = [];
    for (const q of queue) {
      const { sub } = q.join;
      if (!sub.open) {
        q.join.resolve(true);
        continue;
      }
      // Queued during the read with an older position, or ahead of this page: the next page serves it.
      if (q.after < from || q.after > page.through) {
        this.historyQueue.push(q);
        continue;
      }
      let full = false;
      for (const e of encoded) {
        if (e.seq <= q.after || e.seq <= sub.lastSeq) continue;
        if (!sub.sendEvent(e)) {
          full = true;
          break;
        }
        q.sent++;
      }
      if (full) {
        // Its buffer holds a page: the stream ends once released and the client resumes from there.
        h.svc.telemetry.replay("jetstream", q.sent);
        q.join.resolve(true);
        continue;
      }
      q.after = Math.max(q.after, page.through);
      const rest = h.eventsAfter(q.after);
      if (!rest) {
        // More history before the window (or the window moved on during the read): next page.
        this.historyQueue.push(q);
        continue;
      }
      for (const e of rest) if (e.seq > sub.lastSeq && sub.sendEvent(e)) q.sent++;
      h.goLive(sub);
      // One request per resumer (however many pages served it), with every event it was sent.
      h.svc.telemetry.replay("jetstream", q.sent);
      q.join.resolve(true);
    }
    this.readHistory();
  }

  /** The actor applied events: resumes waiting for them are served from memory and go live. */
  caughtUp(): void {
    if (this.waitingForSeq.length === 0) return;
    const h = this.host;
    const still: typeof this.waitingForSeq = [];
    for (const w of this.waitingForSeq) {
      const { sub } = w.join;
      if (!sub.open) {
        w.join.resolve(true);
        continue;
      }
      if (w.after > h.lastSeq) {
        still.push(w);
        continue;
      }
      const events = h.eventsAfter(Math.max(w.after, sub.lastSeq)) ?? [];
      let sent = 0;
      for (const e of events) {
        if (e.seq > sub.lastSeq && sub.sendEvent(e)) sent++;
      }
      h.goLive(sub);
      // A resume that waited for this node to catch up is served from memory like any other.
      h.svc.telemetry.replay("memory", sent);
      w.join.resolve(true);
    }
    this.waitingForSeq = still;
  }

  /** The actor cannot catch up (the log keeps failing): resumes waiting for it end, to resume elsewhere. */
  giveUpWaiting(): void {
    for (const w of this.waitingForSeq) w.join.resolve(false);
    this.waitingForSeq = [];
  }

  /** The actor stops: every join still held is settled `false`. */
  stop(): void {
    clearTimeout(this.historyTimer);
    for (const w of this.waitingForSeq) w.join.resolve(false);
    for (const q of this.historyQueue) q.join.resolve(false);
    this.waitingForSeq = [];
    this.historyQueue = [];
  }
}

/** Gives events read in order from the log their `prev` links, starting after `from`. */
export function chain(events: LoggedEvent[], from: number): MatchEvent[] {
  let prev = from;
  return events.map((e) => {
    const out: MatchEvent = { ...e, prev };
    prev = e.seq;
    return out;
  });
}
