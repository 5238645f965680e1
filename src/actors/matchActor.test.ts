/**
 * MatchActor's failure paths without a NATS server (issue 11, point 5): the actor runs against an
 * in-memory log that fails on cue (memoryMatchLog.ts) and a node of fakes (ring, lease table, feed, sync,
 * index) that the test drives as the node would (join/leave/reconsider/watchdog/sync/snapshot/stop).
 * Every waiter must settle on every path, and every client must get every event exactly once, in order.
 *
 * Time is driven, never waited for: the mailbox is drained with microtask turns, and the retry timers
 * are moved with fake timers only in the tests that need them.
 */
import { afterEach, describe, expect, jest, test } from "bun:test";
import { MatchActor } from "./matchActor.ts";
import { MatchHub } from "./matchHub.ts";
import { MemoryMatchLog, type LogMethod } from "./memoryMatchLog.ts";
import type { EncodedEvent } from "./encodedEvent.ts";
import type { MatchSnapshot } from "./matchSnapshot.ts";
import type { FeedMessage, IndexEntry, MatchServices, SyncReply } from "./services.ts";
import type { MatchSubscriber } from "./subscriber.ts";
import { WindowBudget } from "./windowBudget.ts";
import type { LoggedEvent } from "../bus/matchLog.ts";
import type { MatchEvent } from "../match/event.ts";
import { applyStatePatch, type Json } from "../match/mergePatch.ts";
import { jsonBytes } from "../match/stateSize.ts";
import { MatchSpans } from "../telemetry/matchSpans.ts";
import { TRACING_OFF } from "../telemetry/spans.ts";
import { SHARD_COUNT, shardOf } from "../cluster/shards.ts";

const M = "final";
const SELF = "node-a";
const OTHER = "node-b";
/** The node's sync timeout (touchlineNode.ts): a follower asking a silent owner gives up after it. */
const SYNC_TIMEOUT_MS = 1500;
/** Long enough for any bounded retry to have given up (the actor's backoff caps at 2 s). */
const LONG_MS = 60_000;

// ----- driving time ------------------------------------------------------------------------------------

/** Lets queued microtasks run: the mailbox, the memory log's answers and its followers' deliveries. */
async function drain(turns = 1000): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

/** Fake timers: moves time by `ms` in steps, draining between steps so timer → post → timer chains run. */
async function advance(ms: number, step = 10): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    jest.advanceTimersByTime(Math.min(step, ms - t));
    await drain(200);
  }
}

/** One turn of the event loop (what setImmediate waits for), then the microtasks it left. */
async function nextTurn(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await drain();
}

/** A promise whose settling the test can look at without awaiting it. */
function track<T>(p: Promise<T>): { readonly settled: boolean; readonly value: T | undefined } {
  const t = { settled: false, value: undefined as T | undefined };
  p.then((v) => {
    t.settled = true;
    t.value = v;
  });
  return t;
}

// ----- the node around the actor -----------------------------------------------------------------------

/** The owners bucket: compare-and-set leases whose revision is the epoch (cluster/leases.ts). */
class MemoryLeases {
  private readonly table = new Map<string, { node: string; epoch: number }>();
  private revision = 0;
  /** Nodes membership counts as live: a live holder's lease is never taken over. */
  readonly live = new Set([SELF, OTHER]);

  acquire(node: string, match: string): number | undefined {
    const current = this.table.get(match);
    if (current && current.node !== node && this.live.has(current.node)) return undefined;
    const epoch = ++this.revision;
    this.table.set(match, { node, epoch });
    return epoch;
  }

  /** Compare-and-delete at `epoch`. */
  release(match: string, epoch: number): void {
    if (this.table.get(match)?.epoch === epoch) this.table.delete(match);
    this.revision++;
  }

  holder(match: string): { node: string; epoch: number } | undefined {
    return this.table.get(match);
  }

  /** The lease an actor acts under: its shard's (a test's matches never share a shard). */
  holderOfShard(shard: number): { node: string; epoch: number } | undefined {
    for (const [match, lease] of this.table) if (shardOf(match) === shard) return lease;
    return undefined;
  }

  /** Another node writes the lease (a takeover while this node was away): returns its epoch. */
  takeOver(match: string, node: string): number {
    const epoch = ++this.revision;
    this.table.set(match, { node, epoch });
    return epoch;
  }
}

/** The match's feed subject: what the actor published, and the messages the test delivers to it. */
class MemoryFeed {
  readonly published: FeedMessage[] = [];
  private readonly listeners = new Set<(m: FeedMessage, trace: undefined) => void>();

  get subscribed(): number {
    return this.listeners.size;
  }

  subscribe(onMessage: (m: FeedMessage, trace: undefined) => void): () => void {
    this.listeners.add(onMessage);
    return () => this.listeners.delete(onMessage);
  }

  /** A message from the owner reaching this node (a message the test does not deliver is a dropped one). */
  deliver(m: FeedMessage): void {
    for (const l of [...this.listeners]) l(m, undefined);
  }
}

/** A client stream as the actor sees it: whole events only, and a resume holds at most `cap` bytes. */
class Client implements MatchSubscriber {
  lastSeq = 0;
  open = true;
  /** Seqs of the events the client was sent, in order. */
  readonly got: number[] = [];
  readonly snapshots: MatchSnapshot[] = [];
  /** Bytes queued while the join was not settled (what SseStream holds before `release`). */
  heldBytes = 0;
  private holding = true;
  private replayFull = false;

  constructor(readonly cap = Number.POSITIVE_INFINITY) {}

  sendSnapshot(s: MatchSnapshot): void {
    this.snapshots.push(s);
    this.lastSeq = s.seq;
    if (this.holding) this.heldBytes += s.frame.byteLength;
  }

  /** Like SseStream.write while opening: the first event always fits, then whole events up to the cap. */
  sendEvent(e: EncodedEvent): boolean {
    if (!this.open || this.replayFull) return false;
    const n = e.frame.byteLength;
    if (this.holding && this.heldBytes > 0 && this.heldBytes + n > this.cap) {
      this.replayFull = true;
      return false;
    }
    if (this.holding) this.heldBytes += n;
    this.got.push(e.seq);
    this.lastSeq = e.seq;
    return true;
  }

  /** Times the actor said the match ended (a single-match stream would then end). */
  ends = 0;

  matchEnded(): void {
    this.ends++;
  }

  /** Times the actor let the client go (a stream would end, and its client resume by id). */
  letGo = 0;

  actorStopped(): void {
    this.letGo++;
    this.open = false;
  }

  /** What the stream layer does once the join settles (http/streams.ts settleJoin). */
  settle(live: boolean): void {
    this.holding = false;
    if (!live || this.replayFull) this.open = false;
  }
}

/** A log's events of a match with the `prev` links their owner gives them. */
function chained(events: LoggedEvent[]): MatchEvent[] {
  let prev = 0;
  return events.map((e) => {
    const out: MatchEvent = { ...e, prev };
    prev = e.seq;
    return out;
  });
}

interface HarnessOptions {
  windowEvents?: number;
  historyPageBytes?: number;
  maxStateBytes?: number;
}

const harnesses: Harness[] = [];

class Harness {
  readonly log = new MemoryMatchLog();
  readonly leases = new MemoryLeases();
  readonly feed = new MemoryFeed();
  readonly index = new Map<string, IndexEntry>();

  /**
   * The match's index entry as the bucket would hold it: without this node's bound on its state's bytes,
   * which must be at least the state's size.
   */
  writtenEntry(match: string): IndexEntry | undefined {
    const entry = this.index.get(match);
    if (entry === undefined) return undefined;
    const { stateBytesAtMost, ...written } = entry;
    if (stateBytesAtMost !== undefined) expect(stateBytesAtMost).toBeGreaterThanOrEqual(jsonBytes(entry.state));
    return written;
  }
  readonly warnings: string[] = [];
  /** Who the ring names as the match's owner. */
  ringOwner: string | undefined = SELF;
  /** The remote owner's epoch, in its sync replies and feed messages. */
  ownerEpoch = 0;
  syncCalls = 0;
  /** Events of the match stored so far (their state counts them). */
  private stored = 0;
  /** What a sync with the owner does; by default the owner answers from the log, ready. */
  onSync: (owner: string, after: number) => Promise<SyncReply> = async () => this.syncReply();
  readonly svc: MatchServices;
  readonly actor: MatchActor;

  constructor(opts: HarnessOptions = {}) {
    this.svc = {
      selfId: SELF,
      windowEvents: opts.windowEvents ?? 100,
      windowBytes: 1 << 20,
      windowBudget: new WindowBudget(1 << 24),
      historyPageBytes: opts.historyPageBytes ?? 1 << 16,
      maxStateBytes: opts.maxStateBytes ?? 1 << 16,
      logTag: "t1",
      log: this.log,
      ownerOf: () => this.ringOwner,
      acquireLease: async (match) => this.leases.acquire(SELF, match),
      releaseLease: async (match, epoch) => this.leases.release(match, epoch),
      leaseHolder: (shard) => this.leases.holderOfShard(shard),
      publishFeed: (_match, msg) => this.feed.published.push(msg),
      subscribeFeed: (_match, onMessage) => this.feed.subscribe(onMessage),
      requestSync: (owner, _match, after) => {
        this.syncCalls++;
        return this.onSync(owner, after);
      },
      readIndex: (match) => this.index.get(match),
      writeIndex: (match, entry) => this.index.set(match, entry),
      telemetry: {
        delivered: () => {},
        replay: () => {},
        ownershipMoved: () => {},
        warn: (msg) => this.warnings.push(msg),
        debug: () => {},
        spans: new MatchSpans(TRACING_OFF),
      },
    };
    this.actor = new MatchActor(M, this.svc);
    harnesses.push(this);
  }

  /** Stores `n` events of the match (each patches the state), with another match's message before each. */
  appendEvents(n: number, data: Json = null): number[] {
    const seqs: number[] = [];
    for (let i = 0; i < n; i++) {
      this.log.append("other", { data: "noise" });
      const seq = this.log.append(M, { data, state: { n: ++this.stored, [`k${this.stored % 3}`]: this.stored } });
      seqs.push(seq);
    }
    return seqs;
  }

  /** The owner's sync reply: its state and window through `through` (default: all it has). */
  syncReply(through = Number.POSITIVE_INFINITY): SyncReply {
    const events = chained(this.log.eventsOf(M)).filter((e) => e.seq <= through);
    let state: Record<string, Json> = {};
    for (const e of events) state = applyStatePatch(state, e.state);
    return { epoch: this.ownerEpoch, seq: events.at(-1)?.seq ?? 0, state, window: events.slice(-500), private: false };
  }

  /** The owner's feed message carrying stored event `seq`. */
  feedEvent(seq: number, epoch = this.ownerEpoch): FeedMessage {
    const event = chained(this.log.eventsOf(M)).find((e) => e.seq === seq);
    if (!event) throw new Error(`no event ${seq} stored`);
    return { kind: "event", epoch, event };
  }

  tick(seq: number, epoch = this.ownerEpoch): FeedMessage {
    return { kind: "tick", epoch, seq };
  }

  /** Joins as the stream layer does and settles the client with the outcome. */
  async join(client: Client, after: number | undefined): Promise<boolean> {
    const live = await this.actor.join(client, after);
    client.settle(live);
    return live;
  }

  /** Starts the actor as this node's owner and waits until it has read the log. */
  async startOwner(): Promise<void> {
    this.ringOwner = SELF;
    this.actor.start();
    await drain();
    expect(this.actor.role).toBe("owner");
    expect(this.actor.isReady).toBe(true);
  }

  /** Starts the actor as a follower of OTHER (synced from its reply) and waits until it is ready. */
  async startFollower(): Promise<void> {
    this.ringOwner = OTHER;
    this.ownerEpoch = this.leases.takeOver(M, OTHER);
    this.actor.start();
    await drain();
    expect(this.actor.role).toBe("follower");
    expect(this.actor.isReady).toBe(true);
  }

  /** Step failures are errors the actor did not handle itself (the mailbox's last-resort catch). */
  get stepFailures(): string[] {
    return this.warnings.filter((w) => w === "match actor step failed");
  }
}

afterEach(async () => {
  jest.useRealTimers();
  const all = harnesses.splice(0);
  for (const h of all) {
    h.log.clearFaults();
    for (const m of ["lastSeqOf", "firstSeq", "read", "follow"] as LogMethod[]) h.log.release(m, new Error("test over"));
    // Settles whatever a failed test left waiting; never awaited (a wedged actor must not hang the suite).
    void h.actor.stop();
    await drain();
  }
});

// ----- a log error while admitting ---------------------------------------------------------------------

describe("a log error while admitting a subscriber settles the join with false", () => {
  test("lastSeqOf rejects (a resume ahead of the actor)", async () => {
    const h = new Harness();
    h.appendEvents(5);
    await h.startOwner();
    h.log.failNext("lastSeqOf");
    const c = new Client();
    expect(await h.join(c, 99)).toBe(false);
    expect(c.open).toBe(false);
    // The actor is not wedged: the same resume without the fault is answered (an unknown id: a snapshot).
    const again = new Client();
    expect(await h.join(again, 99)).toBe(true);
    expect(again.snapshots.map((s) => s.seq)).toEqual([h.actor.latestSeq]);
    expect(h.stepFailures).toEqual([]);
  });

  test("firstSeq rejects (a resume from before the window)", async () => {
    const h = new Harness({ windowEvents: 5 });
    const seqs = h.appendEvents(20);
    await h.startOwner();
    h.log.failNext("firstSeq");
    const c = new Client();
    expect(await h.join(c, seqs[2]!)).toBe(false);
    expect(c.got).toEqual([]);
    expect(h.stepFailures).toEqual([]);
  });

  test("read keeps rejecting (a resume from before the window): the join settles false, it does not wait for ever", async () => {
    jest.useFakeTimers();
    const h = new Harness({ windowEvents: 5 });
    const seqs = h.appendEvents(20);
    await h.startOwner();
    h.log.failNext("read", 10_000);
    const c = new Client();
    const joined = track(h.actor.join(c, seqs[2]!));
    await advance(LONG_MS, 100);
    expect(h.log.calls.read).toBeGreaterThan(0);
    expect(joined.settled).toBe(true);
    expect(joined.value).toBe(false);
    expect(c.got).toEqual([]);
  });

  test("read keeps rejecting (a follower catching up to a resume ahead of it): the join settles false", async () => {
    jest.useFakeTimers();
    const h = new Harness();
    h.appendEvents(5);
    await h.startFollower();
    // The owner stored three more whose feed messages this node has not had yet.
    const ahead = h.appendEvents(3);
    h.log.failNext("read", 10_000);
    const c = new Client();
    const joined = track(h.actor.join(c, ahead[1]!));
    await advance(LONG_MS, 100);
    expect(h.log.calls.read).toBeGreaterThan(0);
    expect(joined.settled).toBe(true);
    expect(joined.value).toBe(false);
  });

  test("the log keeps failing while a follower cannot sync: a join waiting for it to be ready settles false", async () => {
    jest.useFakeTimers();
    const h = new Harness();
    h.appendEvents(3);
    h.ringOwner = OTHER;
    h.onSync = () => Promise.reject(new Error("owner unreachable"));
    h.log.failNext("lastSeqOf", 10_000);
    h.actor.start();
    await drain();
    const joined = track(h.actor.join(new Client(), undefined));
    await advance(LONG_MS, 100);
    expect(h.syncCalls).toBeGreaterThan(1); // it kept trying
    expect(h.actor.isReady).toBe(false);
    expect(joined.settled).toBe(true);
    expect(joined.value).toBe(false);
  });

  test("a log call that hangs then fails: the join waits for the log, then settles false", async () => {
    const h = new Harness();
    h.appendEvents(5);
    await h.startOwner();
    h.log.hangNext("lastSeqOf");
    const joined = track(h.actor.join(new Client(), 99));
    await drain();
    expect(h.log.hanging("lastSeqOf")).toBe(1);
    expect(joined.settled).toBe(false);
    h.log.release("lastSeqOf", new Error("timeout"));
    await drain();
    expect(joined.value).toBe(false);
  });
});

// ----- stop() ------------------------------------------------------------------------------------------

describe("stop() settles every waiter", () => {
  test("joins and state reads waiting for an owner still catching up from the log", async () => {
    const h = new Harness();
    h.appendEvents(10);
    h.log.pauseFollowers();
    h.actor.start();
    await drain();
    expect(h.actor.role).toBe("owner");
    expect(h.actor.isReady).toBe(false);

    const fresh = new Client();
    const resumer = new Client();
    const j1 = track(h.actor.join(fresh, undefined));
    const j2 = track(h.actor.join(resumer, 3));
    const read = track(h.actor.snapshot());
    await drain();
    expect([j1.settled, j2.settled, read.settled]).toEqual([false, false, false]);

    await h.actor.stop();
    await drain();
    expect(j1.value).toBe(false);
    expect(j2.value).toBe(false);
    expect(read.settled).toBe(true);
    expect(read.value?.seq).toBe(0);
    // Nothing left behind: the reader is gone and the lease handed back.
    expect(h.log.activeFollowers()).toBe(0);
    expect(h.leases.holder(M)).toBeUndefined();
    h.log.resumeFollowers();
    await drain();
    expect(fresh.got).toEqual([]);
    expect(resumer.got).toEqual([]);
  });

  test("joins waiting for a follower that cannot sync or read the log yet", async () => {
    jest.useFakeTimers();
    const h = new Harness();
    h.appendEvents(3);
    h.ringOwner = OTHER;
    h.onSync = () => Promise.reject(new Error("owner not ready"));
    h.log.failNext("lastSeqOf", 10_000);
    h.actor.start();
    await drain();
    expect(h.actor.isReady).toBe(false);
    const joined = track(h.actor.join(new Client(), undefined));
    const read = track(h.actor.snapshot());
    await drain();
    expect(joined.settled).toBe(false);

    const stopped = track(h.actor.stop());
    await drain();
    expect(stopped.settled).toBe(true);
    expect(joined.value).toBe(false);
    expect(read.settled).toBe(true);
    // Its retry timer went with it: time passing does not bring it back.
    const syncs = h.syncCalls;
    await advance(5000, 100);
    expect(h.syncCalls).toBe(syncs);
    expect(h.feed.subscribed).toBe(0);
  });

  test("a join waiting for a seq ahead of the actor, and a state read waiting for it", async () => {
    const h = new Harness();
    h.appendEvents(5);
    await h.startOwner();
    h.log.pauseFollowers();
    const ahead = h.appendEvents(3);
    const c = new Client();
    const joined = track(h.actor.join(c, ahead[1]!));
    const read = track(h.actor.snapshot(ahead[2]!));
    await drain();
    expect(joined.settled).toBe(false);
    expect(read.settled).toBe(false);

    await h.actor.stop();
    await drain();
    expect(joined.value).toBe(false);
    // Answered at once with what the actor had, not after its catch-up timeout.
    expect(read.value?.seq).toBe(h.actor.latestSeq);
    h.log.resumeFollowers();
    await drain();
    expect(c.got).toEqual([]);
  });

  test("live subscribers are let go, so their streams end and resume by id: nothing more comes through a stopped actor", async () => {
    const h = new Harness();
    h.appendEvents(2);
    await h.startOwner();
    const c = new Client();
    expect(await h.join(c, undefined)).toBe(true);
    expect(h.actor.subscribers.size).toBe(1);
    await h.actor.stop();
    expect(c.letGo).toBe(1);
    expect(h.actor.subscribers.size).toBe(0);
  });

  test("a join queued for history while its page is being read", async () => {
    const h = new Harness({ windowEvents: 5 });
    const seqs = h.appendEvents(20);
    await h.startOwner();
    h.log.hangNext("read");
    const c = new Client();
    const joined = track(h.actor.join(c, seqs[2]!));
    await drain();
    expect(h.log.hanging("read")).toBe(1);
    expect(joined.settled).toBe(false);

    await h.actor.stop();
    await drain();
    expect(joined.value).toBe(false);
    // The page arriving afterwards is sent to nobody.
    h.log.release("read");
    await drain();
    expect(c.got).toEqual([]);
  });
});

// ----- gap fills ---------------------------------------------------------------------------------------

describe("a follower whose gap fill fails", () => {
  test("retries with backoff, then delivers every event exactly once in order (ticks included)", async () => {
    jest.useFakeTimers();
    const h = new Harness();
    h.appendEvents(3);
    await h.startFollower();
    const c = new Client();
    expect(await h.join(c, h.actor.latestSeq)).toBe(true);

    const [e4, e5, e6] = h.appendEvents(3) as [number, number, number];
    h.log.failNext("read", 3);
    // e4's feed message is lost; e5 shows the gap, whose fill fails.
    h.feed.deliver(h.feedEvent(e5));
    await drain();
    expect(h.log.calls.read).toBe(1);
    await advance(99);
    expect(h.log.calls.read).toBe(1);
    await advance(1);
    expect(h.log.calls.read).toBe(2); // first retry after 100 ms: fails again
    await advance(50);
    // A tick arrives meanwhile: it names the owner's seq, and its own fill fails too (the third failure).
    h.feed.deliver(h.tick(e5));
    await drain();
    expect(h.log.calls.read).toBe(3);
    expect(c.got).toEqual([]);
    await advance(399);
    expect(h.log.calls.read).toBe(3); // backoff doubled
    await advance(1);
    expect(h.log.calls.read).toBe(4);
    expect(c.got).toEqual([e4, e5]);

    // Late duplicates and ticks change nothing; the next event follows on.
    h.feed.deliver(h.feedEvent(e5));
    h.feed.deliver(h.tick(e5));
    h.feed.deliver(h.feedEvent(e6));
    h.feed.deliver(h.tick(e6));
    await drain();
    expect(c.got).toEqual([e4, e5, e6]);
    expect(h.log.calls.read).toBe(4);
    await advance(5000, 100);
    expect(h.log.calls.read).toBe(4);
    expect(c.got).toEqual([e4, e5, e6]);
    expect(h.stepFailures).toEqual([]);
  });

  test("the event that revealed the gap is delivered by the retry, without waiting for a tick", async () => {
    jest.useFakeTimers();
    const h = new Harness();
    h.appendEvents(3);
    await h.startFollower();
    const c = new Client();
    expect(await h.join(c, h.actor.latestSeq)).toBe(true);

    const [e4, e5] = h.appendEvents(2) as [number, number];
    h.log.failNext("read", 1);
    h.feed.deliver(h.feedEvent(e5)); // e4's message was lost
    await drain();
    await advance(100);
    expect(h.log.calls.read).toBe(2);
    // The follower had e5 in hand; once the retry fills the gap before it, e5 is due too.
    expect(c.got).toEqual([e4, e5]);
  });
});

// ----- leases ------------------------------------------------------------------------------------------

describe("an owner whose lease is gone", () => {
  const cases: [string, (h: Harness) => void][] = [
    ["released by the interim owner", (h) => h.leases.release(M, h.leases.holder(M)!.epoch)],
    [
      "taken at a newer epoch by a node that has since gone",
      (h) => {
        h.leases.takeOver(M, OTHER);
        h.leases.live.delete(OTHER);
      },
    ],
  ];

  for (const [name, loseLease] of cases) {
    test(`${name}: stops acting as owner and takes a new lease (the ring still names it)`, async () => {
      const h = new Harness();
      h.appendEvents(3);
      await h.startOwner();
      const oldEpoch = h.leases.holder(M)!.epoch;
      const c = new Client();
      expect(await h.join(c, h.actor.latestSeq)).toBe(true);

      loseLease(h);
      // Without the lease it no longer answers as owner.
      expect(await h.actor.sync()).toBeUndefined();
      const publishedBefore = h.feed.published.length;
      h.actor.watchdog(Date.now());
      await drain();

      const lease = h.leases.holder(M);
      expect(lease?.node).toBe(SELF);
      expect(lease!.epoch).toBeGreaterThan(oldEpoch);
      expect(h.actor.role).toBe("owner");
      expect(h.log.activeFollowers(M)).toBe(1);
      expect((await h.actor.sync())?.epoch).toBe(lease!.epoch);

      const more = h.appendEvents(2);
      await drain();
      expect(c.got).toEqual(more);
      const since = h.feed.published.slice(publishedBefore);
      expect(since.filter((m) => m.kind === "event").length).toBe(2);
      expect(since.every((m) => m.epoch === lease!.epoch)).toBe(true);
      expect(h.stepFailures).toEqual([]);
    });
  }

  test("taken at a newer epoch by a live node: follows it, and takes the lease back once released", async () => {
    jest.useFakeTimers();
    const h = new Harness();
    h.appendEvents(3);
    await h.startOwner();
    const oldEpoch = h.leases.holder(M)!.epoch;
    const c = new Client();
    expect(await h.join(c, h.actor.latestSeq)).toBe(true);

    const interim = h.leases.takeOver(M, OTHER);
    h.ownerEpoch = interim;
    const publishedBefore = h.feed.published.length;
    h.actor.watchdog(Date.now());
    await drain();
    expect(h.actor.role).toBe("follower");
    expect(h.log.activeFollowers(M)).toBe(0);
    expect(h.feed.subscribed).toBe(1);
    expect(h.leases.holder(M)).toEqual({ node: OTHER, epoch: interim });

    // The interim owner's events reach this node's clients through its feed.
    const [e4] = h.appendEvents(1) as [number];
    h.feed.deliver(h.feedEvent(e4));
    await drain();
    expect(c.got).toEqual([e4]);

    // The interim owner sees the ring and hands over; the actor's retry takes the lease.
    h.leases.release(M, interim);
    await advance(2000, 50);
    const lease = h.leases.holder(M);
    expect(lease?.node).toBe(SELF);
    expect(lease!.epoch).toBeGreaterThan(interim);
    expect(h.actor.role).toBe("owner");
    expect(h.feed.subscribed).toBe(0);

    const [e5, e6] = h.appendEvents(2) as [number, number];
    await drain();
    expect(c.got).toEqual([e4, e5, e6]);
    const since = h.feed.published.slice(publishedBefore);
    expect(since.some((m) => m.epoch <= oldEpoch)).toBe(false);
    expect(since.filter((m) => m.kind === "event").every((m) => m.epoch === lease!.epoch)).toBe(true);
  });
});

test("settledUnder: an actor is settled when its role already follows the ring's owner (a ring change then leaves it alone)", async () => {
  jest.useFakeTimers();
  const owner = new Harness();
  await owner.startOwner();
  expect(owner.actor.settledUnder(SELF)).toBe(true);
  expect(owner.actor.settledUnder(OTHER)).toBe(false);
  expect(owner.actor.settledUnder(undefined)).toBe(false);

  const follower = new Harness();
  follower.appendEvents(2);
  await follower.startFollower();
  expect(follower.actor.settledUnder(OTHER)).toBe(true);
  expect(follower.actor.settledUnder(SELF)).toBe(false);
  expect(follower.actor.settledUnder("node-c")).toBe(false);

  // The ring gives this node the match while OTHER, still live, holds the lease: the actor follows OTHER
  // meanwhile, and is not settled until it owns (a ring change must reach it, whichever shards moved).
  const waiting = new Harness();
  waiting.leases.takeOver(M, OTHER);
  waiting.ringOwner = SELF;
  waiting.actor.start();
  await drain();
  expect(waiting.actor.role).toBe("follower");
  expect(waiting.actor.settledUnder(SELF)).toBe(false);

  await owner.actor.stop();
  expect(owner.actor.settledUnder(OTHER)).toBe(true);
});

/** Hub options for the hub tests: actors never go idle within a test. */
const HUB = { actorIdleMs: LONG_MS, sendInterest: () => {} };

describe("MatchHub: ring changes, retirements and owners found active", () => {
  /** A hub over a harness whose match M has two events and an owner actor here; stopped after `body`. */
  async function withOwningHub(body: (h: Harness, hub: MatchHub, owner: MatchActor) => Promise<void>): Promise<void> {
    const h = new Harness();
    h.appendEvents(2);
    const hub = new MatchHub(h.svc, HUB);
    try {
      const owner = hub.get(M);
      await drain();
      expect(owner.role).toBe("owner");
      await body(h, hub, owner);
    } finally {
      await hub.stopAll();
    }
  }

  test("a stopped hub starts no actor: nothing would ever sweep or stop it", async () => {
    const h = new Harness();
    h.appendEvents(2);
    const hub = new MatchHub(h.svc, HUB);
    await hub.stopAll();
    expect(hub.isStopped).toBe(true);
    expect(() => hub.get(M)).toThrow("stopped");
    await drain();
    expect(h.leases.holder(M)).toBeUndefined();
    expect(hub.ownedCount()).toBe(0);
  });

  test("an owner serving nobody is stopped (lease handed back, no feed, no sync); the next use starts a follower", async () => {
    await withOwningHub(async (h, hub, owner) => {
      expect(h.leases.holder(M)?.node).toBe(SELF);

      h.ringOwner = OTHER;
      hub.ringChanged(new Set([owner.shard]), () => OTHER);
      await nextTurn();
      expect(owner.role).toBe("stopped");
      expect(h.leases.holder(M)).toBeUndefined();
      expect(h.feed.subscribed).toBe(0);
      expect(h.syncCalls).toBe(0);

      const next = hub.get(M);
      expect(next).not.toBe(owner);
      await drain();
      expect(next.role).toBe("follower");
    });
  });

  test("an owner with a client steps down and follows the new owner: the client keeps every event", async () => {
    await withOwningHub(async (h, hub, owner) => {
      const c = new Client();
      const live = await owner.join(c, owner.latestSeq);
      c.settle(live);
      expect(live).toBe(true);

      h.ringOwner = OTHER;
      h.ownerEpoch = h.leases.takeOver(M, OTHER);
      hub.ringChanged(new Set([owner.shard]), () => OTHER);
      await drain();
      expect(hub.get(M)).toBe(owner);
      expect(owner.role).toBe("follower");
      expect(h.feed.subscribed).toBe(1);
      expect(h.syncCalls).toBe(1);

      const [e3] = h.appendEvents(1) as [number];
      h.feed.deliver(h.feedEvent(e3));
      await drain();
      expect(c.got).toEqual([e3]);
    });
  });

  test("a match used again before its retired actor stopped takes that actor back: never two actors for one match", async () => {
    await withOwningHub(async (h, hub, owner) => {
      h.ringOwner = OTHER;
      h.ownerEpoch = 0;
      hub.ringChanged(new Set([owner.shard]), () => OTHER);
      // A client arrives within the same turn: the retired actor serves it, in the role the ring gives it.
      const again = hub.get(M);
      expect(again).toBe(owner);
      for (let turn = 0; turn < 3; turn++) await nextTurn();
      expect(again.role).toBe("follower");
      expect(hub.get(M)).toBe(owner);
    });
  });

  test("a ring change before a new actor's first join has run does not retire it: the client follows the new owner", async () => {
    // The store-loss flake: a node first to set up again owns everything for a moment; a client's actor
    // is made and its join posted, the ring moves the match away before the join's step runs, and the
    // actor, seen serving nobody, was retired while the join went live in it: a snapshot, then silence.
    const h = new Harness();
    const hub = new MatchHub(h.svc, HUB);
    try {
      const actor = hub.get(M);
      const c = new Client();
      const joined = track(actor.join(c, undefined));
      h.ringOwner = OTHER;
      h.ownerEpoch = 1000; // the new owner's lease, taken after this node hands its own back
      hub.ringChanged(new Set([actor.shard]), () => OTHER);
      for (let turn = 0; turn < 3; turn++) await nextTurn();
      expect(joined.value).toBe(true);
      c.settle(true);
      expect(actor.role).toBe("follower");
      expect(hub.get(M)).toBe(actor);

      const [e1] = h.appendEvents(1) as [number];
      h.feed.deliver(h.feedEvent(e1));
      await drain();
      expect(c.got).toEqual([e1]);
    } finally {
      await hub.stopAll();
    }
  });

  test("thousands retired at once are stopped a slice per turn of the event loop, every one of them", async () => {
    const h = new Harness();
    const hub = new MatchHub(h.svc, HUB);
    try {
      const actors = Array.from({ length: 1200 }, (_, i) => hub.get(`many-${i}`));
      await drain();
      expect(actors.every((a) => a.role === "owner")).toBe(true);
      h.ringOwner = OTHER;
      hub.ringChanged(new Set(actors.map((a) => a.shard)), () => OTHER);
      await drain();
      expect(actors.filter((a) => a.role === "stopped")).toHaveLength(0);
      await nextTurn();
      const afterOne = actors.filter((a) => a.role === "stopped").length;
      expect(afterOne).toBeGreaterThan(0);
      expect(afterOne).toBeLessThan(actors.length);
      for (let turn = 0; turn < 5; turn++) await nextTurn();
      expect(actors.filter((a) => a.role === "stopped")).toHaveLength(actors.length);
    } finally {
      await hub.stopAll();
    }
  });

  test("startSoon: owners found active start a slice per turn, each once, and only while the ring still gives this node the match", async () => {
    const h = new Harness();
    const hub = new MatchHub(h.svc, HUB);
    try {
      const existing = hub.get("found-0");
      const found = Array.from({ length: 250 }, (_, i) => `found-${i}`);
      for (const m of found) hub.startSoon(m);
      for (const m of found) hub.startSoon(m); // found again before its start: still one
      await drain();
      expect(hub.ownedCount()).toBe(1);
      await nextTurn();
      const afterOne = hub.ownedCount();
      expect(afterOne).toBeGreaterThan(1);
      expect(afterOne).toBeLessThan(found.length);
      for (let turn = 0; turn < 5; turn++) await nextTurn();
      expect(hub.ownedCount()).toBe(found.length);
      expect(hub.get("found-0")).toBe(existing);

      // The ring moved the match away before its turn came: no actor is started for it.
      hub.startSoon("moved-away");
      h.ringOwner = OTHER;
      await nextTurn();
      h.ringOwner = SELF;
      expect(hub.ownedCount()).toBe(found.length);
    } finally {
      await hub.stopAll();
    }
  });

  test("an actor of a shard the ring did not move is left alone", async () => {
    const h = new Harness();
    const hub = new MatchHub(h.svc, HUB);
    try {
      const owner = hub.get(M);
      await drain();
      const leaseBefore = h.leases.holder(M);
      hub.ringChanged(new Set([(owner.shard + 1) % SHARD_COUNT]), () => SELF);
      await drain();
      expect(owner.role).toBe("owner");
      expect(h.leases.holder(M)).toEqual(leaseBefore);
    } finally {
      await hub.stopAll();
    }
  });
});

test("sync() answers at once, with nothing, unless this node is the match's ready owner holding its lease", async () => {
  const h = new Harness();
  h.appendEvents(3);
  h.log.pauseFollowers();
  h.actor.start();
  await drain();
  expect(h.actor.role).toBe("owner");
  expect(h.actor.isReady).toBe(false);
  // Still catching up: a follower asking now reads the log instead of waiting.
  expect(await h.actor.sync()).toBeUndefined();
  h.log.resumeFollowers();
  await drain();
  expect((await h.actor.sync())?.seq).toBe(h.actor.latestSeq);

  const f = new Harness();
  f.appendEvents(3);
  await f.startFollower();
  expect(await f.actor.sync()).toBeUndefined();
});

// ----- a silent owner ----------------------------------------------------------------------------------

describe("a follower whose owner is silent", () => {
  test("catches up from the log through watchdog(now); its subscribers get every event exactly once", async () => {
    const h = new Harness({ historyPageBytes: 120 });
    h.appendEvents(3);
    await h.startFollower();
    const early = new Client();
    expect(await h.join(early, h.actor.latestSeq)).toBe(true);
    const snap = new Client();
    expect(await h.join(snap, undefined)).toBe(true);

    // The owner stores but its feed says nothing (paused, partitioned).
    const missed = h.appendEvents(7);
    const t0 = Date.now();
    h.actor.watchdog(t0 + 1000);
    await drain();
    expect(h.log.calls.read).toBe(0); // not silent for long enough yet
    h.actor.watchdog(t0 + 3000);
    await drain();
    expect(early.got).toEqual(missed);
    expect(snap.got).toEqual(missed);
    expect(h.log.calls.read).toBeGreaterThan(1); // paged

    // The owner's feed comes back with what it had not sent, and more.
    const [next] = h.appendEvents(1) as [number];
    for (const s of [...missed, next]) h.feed.deliver(h.feedEvent(s));
    await drain();
    expect(early.got).toEqual([...missed, next]);
    expect(snap.got).toEqual([...missed, next]);
    expect(h.stepFailures).toEqual([]);
  });

  test("a log read that never answers is reported once by the watchdog, and the mailbox moves on when it does", async () => {
    const h = new Harness();
    h.appendEvents(3);
    await h.startFollower();
    const c = new Client();
    expect(await h.join(c, h.actor.latestSeq)).toBe(true);
    const missed = h.appendEvents(2);
    h.log.hangNext("read");
    const t0 = Date.now();
    h.actor.watchdog(t0 + 3000); // silent owner: the log check's read hangs
    await drain();
    expect(h.log.hanging("read")).toBe(1);
    const stuck = "match actor step still running; its mailbox waits";
    h.actor.watchdog(t0 + 20_000);
    expect(h.warnings).not.toContain(stuck);
    h.actor.watchdog(t0 + 40_000);
    h.actor.watchdog(t0 + 50_000);
    expect(h.warnings.filter((w) => w === stuck)).toHaveLength(1);
    h.log.release("read");
    await drain();
    expect(c.got).toEqual(missed);
    h.actor.watchdog(t0 + 90_000);
    expect(h.warnings.filter((w) => w === stuck)).toHaveLength(1);
    expect(h.stepFailures).toEqual([]);
  });

  test("an owner heard only at an older epoch counts as silent", async () => {
    const h = new Harness();
    h.appendEvents(3);
    await h.startFollower();
    const c = new Client();
    expect(await h.join(c, h.actor.latestSeq)).toBe(true);
    const fenced = h.ownerEpoch - 1;
    const missed = h.appendEvents(2);
    for (const s of missed) h.feed.deliver(h.feedEvent(s, fenced));
    await drain();
    expect(c.got).toEqual([]);
    h.actor.watchdog(Date.now() + 3000);
    await drain();
    expect(c.got).toEqual(missed);
  });
});

// ----- a failed sync -----------------------------------------------------------------------------------

describe("a follower whose sync fails", () => {
  test("loads from the index and the log, becomes ready, and serves joins exactly", async () => {
    const h = new Harness();
    const seqs = h.appendEvents(10);
    // The index is a little behind the log, as it is (written at most every second).
    const at = seqs[5]!;
    h.index.set(M, { seq: at, ts: at, state: h.syncReply(at).state });
    h.ringOwner = OTHER;
    let failSync!: (err: Error) => void;
    h.onSync = () => new Promise<SyncReply>((_, reject) => (failSync = reject));
    h.actor.start();
    const fresh = new Client();
    const resumer = new Client();
    const j1 = track(h.join(fresh, undefined));
    const j2 = track(h.join(resumer, seqs[7]!));
    await drain();
    expect(h.actor.isReady).toBe(false);

    failSync(new Error("sync timed out"));
    await drain();
    expect(h.actor.isReady).toBe(true);
    expect(h.actor.latestSeq).toBe(seqs[9]!);
    expect(h.log.reads[0]?.afterSeq).toBe(at); // started from the index, not from the beginning
    expect(j1.value).toBe(true);
    expect(j2.value).toBe(true);
    expect(fresh.snapshots.map((s) => s.seq)).toEqual([seqs[9]!]);
    expect(fresh.snapshots[0]!.state).toEqual(h.syncReply().state);
    expect(resumer.got).toEqual(seqs.slice(8));

    // Live from here: the owner's feed carries on.
    const [next] = h.appendEvents(1) as [number];
    h.feed.deliver(h.feedEvent(next));
    await drain();
    expect(fresh.got).toEqual([next]);
    expect(resumer.got).toEqual([...seqs.slice(8), next]);
    expect(h.stepFailures).toEqual([]);
  });

  test("a sync that times out while the log fails too: retried until both answer, then ready", async () => {
    jest.useFakeTimers();
    const h = new Harness();
    const seqs = h.appendEvents(4);
    h.ringOwner = OTHER;
    h.onSync = () => new Promise<SyncReply>((_, reject) => setTimeout(() => reject(new Error("timeout")), SYNC_TIMEOUT_MS));
    h.log.failNext("lastSeqOf", 1);
    h.actor.start();
    const c = new Client();
    const joined = track(h.join(c, seqs[1]!));
    await advance(SYNC_TIMEOUT_MS);
    expect(h.actor.isReady).toBe(false); // the log failed as well: a retry is due
    await advance(SYNC_TIMEOUT_MS + 500, 50);
    expect(h.syncCalls).toBe(2);
    expect(h.actor.isReady).toBe(true);
    expect(joined.value).toBe(true);
    expect(c.got).toEqual(seqs.slice(2));
  });
});

// ----- resumes from before the window ------------------------------------------------------------------

describe("a resume from before the window with several pages of history", () => {
  const BIG = "x".repeat(150);
  /** Payload bytes per page: about three events (each ~190 bytes stored). */
  const PAGE = 500;
  /** A client buffer: about two and a half events' frames. */
  const CAP = 600;

  test("a capped subscriber gets whole events up to its cap per join, and re-joins continue exactly until live", async () => {
    const h = new Harness({ windowEvents: 5, historyPageBytes: PAGE });
    const seqs = h.appendEvents(40, BIG);
    h.log.appendInvalid(M); // a message that is not an event: skipped by every reader
    seqs.push(...h.appendEvents(2, BIG));
    await h.startOwner();

    const received: number[] = [];
    let after = seqs[1]!;
    let last: Client | undefined;
    let rounds = 0;
    for (; rounds < 100; rounds++) {
      const c = new Client(CAP);
      expect(await h.join(c, after)).toBe(true);
      expect(c.heldBytes).toBeLessThanOrEqual(CAP);
      expect(c.got.length).toBeGreaterThan(0);
      received.push(...c.got);
      last = c;
      if (c.open) break; // live
      after = c.lastSeq;
    }
    expect(last?.open).toBe(true);
    expect(received).toEqual(seqs.slice(2));
    // A page (about one client buffer) per read, at most one read per round: never the whole range at once.
    for (const r of h.log.reads) expect(r.maxBytes).toBe(PAGE);
    expect(h.log.reads.length).toBeGreaterThan(3);
    expect(h.log.reads.length).toBeLessThanOrEqual(rounds);

    const [next] = h.appendEvents(1, BIG) as [number];
    await drain();
    expect(last!.got.at(-1)).toBe(next);
    expect(h.stepFailures).toEqual([]);
  });

  test("several subscribers at different positions are served by the same reads: one read per page", async () => {
    const h = new Harness({ windowEvents: 5, historyPageBytes: PAGE });
    const seqs = h.appendEvents(40, BIG);
    await h.startOwner();

    // The first page is slow to come: every join arrives while it is read.
    h.log.hangNext("read");
    const positions = [seqs[1]!, seqs[4]!, seqs[9]!, seqs[20]!];
    const clients = positions.map(() => new Client());
    const joins = clients.map((c, i) => h.join(c, positions[i]));
    await drain();
    expect(h.log.calls.read).toBe(1);
    h.log.release("read");
    expect(await Promise.all(joins)).toEqual([true, true, true, true]);

    for (const [i, c] of clients.entries()) {
      expect(c.got).toEqual(seqs.filter((s) => s > positions[i]!));
      expect(c.open).toBe(true);
    }
    // The reads walk the history once, page after page, from the oldest position asked.
    const reads = h.log.reads;
    expect(reads[0]!.afterSeq).toBe(positions[0]!);
    for (let i = 1; i < reads.length; i++) expect(reads[i]!.afterSeq).toBe(reads[i - 1]!.page!.through);
    // As many reads as one subscriber from the oldest position needs.
    const single = new Harness({ windowEvents: 5, historyPageBytes: PAGE });
    single.appendEvents(40, BIG);
    await single.startOwner();
    expect(await single.join(new Client(), positions[0])).toBe(true);
    expect(reads.length).toBe(single.log.reads.length);
    expect(reads.length).toBeGreaterThan(3);

    // And they are all live.
    const [next] = h.appendEvents(1, BIG) as [number];
    await drain();
    for (const c of clients) expect(c.got.at(-1)).toBe(next);
  });

  test("capped subscribers at different positions share the reads and each page out at their cap", async () => {
    const h = new Harness({ windowEvents: 5, historyPageBytes: PAGE });
    const seqs = h.appendEvents(40, BIG);
    await h.startOwner();
    h.log.hangNext("read");
    const positions = [seqs[1]!, seqs[2]!, seqs[3]!];
    const clients = positions.map(() => new Client(CAP));
    const joins = clients.map((c, i) => h.join(c, positions[i]));
    await drain();
    h.log.release("read");
    expect(await Promise.all(joins)).toEqual([true, true, true]);
    // Page one fills the first client's buffer; the other two take the rest of it and fill up on page
    // two, read once for both.
    expect(h.log.reads.map((r) => r.afterSeq)).toEqual([positions[0]!, h.log.reads[0]!.page!.through]);
    for (const [i, c] of clients.entries()) {
      expect(c.open).toBe(false); // paged: it resumes from its last id
      expect(c.heldBytes).toBeLessThanOrEqual(CAP);
      expect(c.got).toEqual(seqs.filter((s) => s > positions[i]!).slice(0, c.got.length));
      expect(c.got.length).toBeGreaterThan(0);
    }
  });
});

describe("a match that ends", () => {
  test("its final event ends every subscriber; later joins get the final snapshot or the replay, then the end; finalSeq answers", async () => {
    const h = new Harness();
    h.appendEvents(3);
    await h.startOwner();
    const live = new Client();
    expect(await h.actor.join(live, undefined)).toBe(true);
    expect(await h.actor.finalSeq()).toBeUndefined();
    const last = h.log.append(M, { type: "fulltime", state: { status: "full-time" }, final: true });
    await drain();
    expect(live.got).toEqual([last]);
    expect(live.ends).toBe(1);
    expect(await h.actor.finalSeq()).toBe(last);

    // A new viewer: the final snapshot, then the end.
    const viewer = new Client();
    expect(await h.actor.join(viewer, undefined)).toBe(true);
    expect(viewer.snapshots.at(-1)?.seq).toBe(last);
    expect(viewer.ends).toBe(1);
    // A resume from before the final event: the events up to it, then the end.
    const behind = new Client();
    expect(await h.actor.join(behind, last - 1)).toBe(true);
    expect(behind.got).toEqual([last]);
    expect(behind.ends).toBe(1);

    // Nothing stored after the final event is streamed (publishing refuses it with 409).
    const stray = h.log.append(M, { type: "late" });
    await drain();
    expect(live.got).toEqual([last]);
    expect(h.actor.latestSeq).toBe(last);
    expect(stray).toBeGreaterThan(last);
  });
});

describe("MatchHub: owned matches nobody watches, kept without an actor", () => {
  /** The stream tail handing on stored event `seq` of the match, as the node does for a match no actor follows. */
  function tailHandsOn(h: Harness, hub: MatchHub, seq: number): void {
    const event = h.log.eventsOf(M).find((e) => e.seq === seq);
    if (!event) throw new Error(`no event ${seq} stored`);
    hub.unclaimedEvent(event, undefined);
  }

  async function withHub(body: (h: Harness, hub: MatchHub) => Promise<void>): Promise<void> {
    const h = new Harness();
    const hub = new MatchHub(h.svc, HUB);
    try {
      await body(h, hub);
    } finally {
      await hub.stopAll();
    }
  }

  test("the index entry follows every event with one check of the log and no actor; a client then starts the owner from it", async () => {
    await withHub(async (h, hub) => {
      const [e1, e2, e3] = h.appendEvents(3) as [number, number, number];
      tailHandsOn(h, hub, e1);
      await drain();
      tailHandsOn(h, hub, e2);
      tailHandsOn(h, hub, e3);
      await drain();
      const expected = h.syncReply();
      expect(h.writtenEntry(M)).toEqual({ seq: e3, ts: e3, state: expected.state });
      expect(h.log.calls.firstStoredAfter).toBe(1);
      expect(h.log.calls.follow).toBe(0);
      expect(h.leases.holder(M)).toBeUndefined();
      expect(hub.ownedCount()).toBe(1);

      const owner = hub.get(M);
      await drain();
      expect(owner.role).toBe("owner");
      expect(owner.latestSeq).toBe(e3);
      expect(hub.ownedCount()).toBe(1);
      const c = new Client();
      expect(await owner.join(c, undefined)).toBe(true);
      expect(c.snapshots.at(-1)?.state).toEqual(expected.state);
    });
  });

  test("an entry behind the log is never folded onto: after a ring move the next event is checked, and the owner actor reads what lies between", async () => {
    await withHub(async (h, hub) => {
      const [e1] = h.appendEvents(1) as [number];
      tailHandsOn(h, hub, e1);
      await drain();
      expect(h.index.get(M)?.seq).toBe(e1);
      // The shard moves away and back; meanwhile another owner applied e2 (its entry not written yet).
      h.ringOwner = OTHER;
      hub.ringChanged(new Set([shardOf(M)]), () => OTHER);
      expect(hub.ownedCount()).toBe(0);
      const [e2] = h.appendEvents(1) as [number];
      h.ringOwner = SELF;
      hub.ringChanged(new Set([shardOf(M)]), () => SELF);
      const [e3] = h.appendEvents(1) as [number];
      tailHandsOn(h, hub, e3);
      for (let turn = 0; turn < 3; turn++) await nextTurn();
      expect(h.log.calls.firstStoredAfter).toBe(2);
      expect(h.log.calls.follow).toBe(1);
      const owner = hub.get(M);
      expect(owner.role).toBe("owner");
      expect(owner.latestSeq).toBe(e3);
      expect(h.writtenEntry(M)).toEqual({ seq: e3, ts: e3, state: h.syncReply().state });
      expect(e2).toBeLessThan(e3);
    });
  });

  test("an owner started from the index has no window: the history a resume reads, reaching the newest event, serves the next resumes from memory", async () => {
    const h = new Harness({ windowEvents: 8 });
    const seqs = h.appendEvents(20);
    h.index.set(M, { seq: seqs[19]!, ts: seqs[19]!, state: h.syncReply().state });
    await h.startOwner();
    expect(h.log.calls.read).toBe(0);
    const first = new Client();
    expect(await h.join(first, seqs[4]!)).toBe(true);
    expect(first.got).toEqual(seqs.slice(5));
    expect(h.log.calls.read).toBe(1);
    // The window kept the newest 8 of what was read: a resume inside it reads nothing more.
    const inside = new Client();
    expect(await h.join(inside, seqs[15]!)).toBe(true);
    expect(inside.got).toEqual(seqs.slice(16));
    expect(h.log.calls.read).toBe(1);
    // Before it, the log again.
    const before = new Client();
    expect(await h.join(before, seqs[6]!)).toBe(true);
    expect(before.got).toEqual(seqs.slice(7));
    expect(h.log.calls.read).toBe(2);
  });

  test("a match moved here with nothing stored after its entry is kept without an actor, and its next event folds at once", async () => {
    await withHub(async (h, hub) => {
      const seqs = h.appendEvents(3);
      h.index.set(M, { seq: seqs[2]!, ts: seqs[2]!, state: h.syncReply().state });
      hub.keepCurrentSoon(M);
      await nextTurn();
      expect(h.log.calls.firstStoredAfter).toBe(1);
      expect(h.log.calls.follow).toBe(0);
      expect(hub.ownedCount()).toBe(1);
      const [e4] = h.appendEvents(1) as [number];
      tailHandsOn(h, hub, e4);
      await drain();
      expect(h.writtenEntry(M)).toEqual({ seq: e4, ts: e4, state: h.syncReply().state });
      expect(h.log.calls.firstStoredAfter).toBe(1);
    });
  });

  test("a match moved here whose entry is behind the log (its last owner died before writing it) starts its owner, which brings the entry up", async () => {
    await withHub(async (h, hub) => {
      const seqs = h.appendEvents(3);
      h.index.set(M, { seq: seqs[0]!, ts: seqs[0]!, state: h.syncReply(seqs[0]).state });
      hub.keepCurrentSoon(M);
      for (let turn = 0; turn < 3; turn++) await nextTurn();
      expect(h.log.calls.follow).toBe(1);
      const owner = hub.get(M);
      expect(owner.role).toBe("owner");
      expect(owner.latestSeq).toBe(seqs[2]!);
      expect(h.writtenEntry(M)).toEqual({ seq: seqs[2]!, ts: seqs[2]!, state: h.syncReply().state });
    });
  });

  test("a final event ends the match in the entry; an event stored after it is not folded", async () => {
    await withHub(async (h, hub) => {
      const [e1] = h.appendEvents(1) as [number];
      const fin = h.log.append(M, { state: { over: true }, final: true });
      const late = h.log.append(M, { state: { over: false } });
      for (const seq of [e1, fin, late]) tailHandsOn(h, hub, seq);
      await drain();
      expect(h.writtenEntry(M)).toEqual({ seq: fin, ts: fin, state: { n: 1, k1: 1, over: true }, ended: true });
      expect(h.warnings).toContain("an event after the match's final event is not streamed");
    });
  });

  test("a client arriving while the entry is being checked gets the actor, and the check folds nothing behind it", async () => {
    await withHub(async (h, hub) => {
      const [e1, e2] = h.appendEvents(2) as [number, number];
      h.log.hangNext("firstStoredAfter");
      tailHandsOn(h, hub, e1);
      const owner = hub.get(M);
      await drain();
      expect(owner.role).toBe("owner");
      expect(owner.latestSeq).toBe(e2);
      const written: number[] = [];
      h.svc.writeIndex = (match, entry) => {
        written.push(entry.seq);
        h.index.set(match, entry);
      };
      h.log.release("firstStoredAfter");
      for (let turn = 0; turn < 3; turn++) await nextTurn();
      expect(written).toEqual([]);
      expect(hub.get(M)).toBe(owner);
      expect(h.index.get(M)?.seq).toBe(e2);
    });
  });
});

// ----- the state's bound -----------------------------------------------------------------------------

describe("MAX_STATE_BYTES", () => {
  test("an owner streams an event whose patch would pass the limit without applying it; the state and the index go on from the last one that fit", async () => {
    const h = new Harness({ maxStateBytes: 200 });
    await h.startOwner();
    const c = new Client();
    expect(await h.join(c, undefined)).toBe(true);
    const fits = h.log.append(M, { data: 1, state: { score: [1, 0] } });
    const tooLarge = h.log.append(M, { data: 2, state: { commentary: "x".repeat(300) } });
    const next = h.log.append(M, { data: 3, state: { score: [2, 0] } });
    await drain();
    expect(c.got).toEqual([fits, tooLarge, next]);
    expect(h.writtenEntry(M)).toEqual({ seq: next, ts: next, state: { score: [2, 0] } });
    expect(h.warnings).toEqual(["a state patch that would pass MAX_STATE_BYTES is not applied"]);
  });

  test("a follower applying the feed leaves such a patch out as the owner does", async () => {
    const h = new Harness({ maxStateBytes: 200 });
    await h.startFollower();
    const c = new Client();
    expect(await h.join(c, h.actor.latestSeq)).toBe(true);
    const seqs = [
      h.log.append(M, { data: 1, state: { a: "y".repeat(100) } }),
      h.log.append(M, { data: 2, state: { b: "y".repeat(100) } }),
      h.log.append(M, { data: 3, state: { a: null, c: 1 } }),
    ];
    for (const seq of seqs) h.feed.deliver(h.feedEvent(seq));
    await drain();
    expect(c.got).toEqual(seqs);
    const snapshot = new Client();
    expect(await h.join(snapshot, undefined)).toBe(true);
    // b (about 110 bytes onto a's 110) would pass 200: left out; then a goes and c comes.
    expect(JSON.parse(new TextDecoder().decode(snapshot.snapshots[0]!.frame).split("data: ")[1]!).state).toEqual({ c: 1 });
  });
});
