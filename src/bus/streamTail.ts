/**
 * StreamTail: this node's one live reader of the event stream, shared by every match it owns.
 *
 * One ordered consumer over every match subject, from "now", instead of one consumer per owned match:
 * a node's JetStream consumers, pulls and heartbeats no longer grow with the matches it owns (20,000
 * owned matches held 20,102 consumers before). Each message is handed to the listeners of its match,
 * in stream order; a message of a match with no listener goes to `onUnclaimed`, which is how an owner
 * keeps the matches it owns and nobody watches current (discovery). The reader survives losing the NATS server
 * it lived on and resumes after the last message it handed on (orderedReader.ts), so every message
 * after `position` reaches the listeners registered at that moment, exactly once.
 *
 * A node alone in its ring mostly reads back what it stored itself, and having JetStream deliver each
 * of those back is a large part of a publish's cost (with it, the nats-server spent about 1.5x the CPU
 * per saturated publish and the node 1.25x: bench/README.md, "What the stream tail costs"). So while the node is alone and its stores are the only
 * ones (ownStoresWatch.ts), the tail stops its consumer and hands on each of its own stores from the
 * acknowledgement, which carries its sequence: one that follows the last sequence handed on is the next
 * message of the stream. Anything else (a hole before an acknowledged sequence; a message stored after
 * the last one handed on, which a check every OWN_STORES_CHECK_MS looks for while nothing of this node
 * is in flight; another node in the ring) brings the consumer back from the last sequence handed on,
 * so the order, and the rule that every message after `position` is handed on exactly once, hold
 * whoever stored what. The fence stays the log's order: a stale writer's store is handed on where the
 * log put it.
 */
import { type OrderedReader, type ReaderContext, readOrdered, type StoredMessage } from "./orderedReader.ts";
import { OwnStoresWatch } from "./ownStoresWatch.ts";
import type { MsgHdrs } from "@nats-io/transport-node";

/** A reader of one match's messages off the tail (an object, not a closure: one per followed match). */
export interface TailListener {
  onTailMessage(m: StoredMessage): void;
}

/** How often a tail handing on its own stores checks for a store of someone else after them. */
export const OWN_STORES_CHECK_MS = 100;
/** How long a reading tail must see only this node's stores before it stops its consumer. */
export const OWN_STORES_QUIET_MS = 1000;
/** Pause before trying again to start a consumer that could not be created. */
const REOPEN_RETRY_MS = 500;

/** What the tail needs to know to hand on its own stores; without it, it always reads. */
export interface OwnStores {
  /** Whether this node is the only member of its ring. */
  alone(): boolean;
  /** Stores of this node to the stream not acknowledged yet (nothing is checked while some are). */
  inFlight(): number;
  /** The sequence of the first message stored after `afterSeq`, undefined when none is. */
  firstStoredAfter(afterSeq: number): Promise<number | undefined>;
}

/** Where the messages handed on come from: the consumer, the consumer being created, or this node's acknowledgements. */
type Feed = "reader" | "opening" | "acks" | "stopped";

const utf8 = new TextEncoder();

/** A message this node stored, as its acknowledgement tells it. */
class OwnStoredMessage implements StoredMessage {
  private bytes: Uint8Array | undefined;
  readonly timestampNanos = Date.now() * 1e6;
  readonly pending = 0;

  constructor(
    readonly subject: string,
    readonly seq: number,
    readonly text: string,
    readonly headers: MsgHdrs | undefined,
  ) {}

  get data(): Uint8Array {
    this.bytes ??= utf8.encode(this.text);
    return this.bytes;
  }
}

export class StreamTail {
  private reader: OrderedReader | undefined;
  private feed: Feed = "stopped";
  /** The stream sequence of the last message handed on. */
  private handedOn = 0;
  private watch: OwnStoresWatch | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private checking = false;
  private ticks = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  /** One listener per match almost always (its owner's follow): a Set only when there are more. */
  private readonly listeners = new Map<string, TailListener | Set<TailListener>>();

  constructor(
    private readonly readers: ReaderContext,
    private readonly stream: string,
    private readonly filter: string,
    private readonly matchOf: (subject: string) => string,
    private readonly onUnclaimed: (match: string, m: StoredMessage) => void,
    private readonly own?: OwnStores,
  ) {}

  async start(): Promise<void> {
    this.feed = "opening";
    const reader = await readOrdered(this.readers, { stream: this.stream, filter: this.filter, start: "new" }, (m) => this.dispatch(m));
    if (!this.running()) {
      reader.stop();
      return;
    }
    this.reader = reader;
    this.feed = "reader";
    this.handedOn = Math.max(this.handedOn, reader.position());
    if (this.own) {
      this.watch = new OwnStoresWatch(this.handedOn);
      this.timer = setInterval(() => this.tick(), OWN_STORES_CHECK_MS);
    }
  }

  stop(): void {
    this.feed = "stopped";
    this.reader?.stop();
    this.reader = undefined;
    clearInterval(this.timer);
    clearTimeout(this.retry);
  }

  /**
   * The stream sequence of the last message handed on (at start, the stream's last sequence). A
   * listener added now receives every message of its match after this, so a reader catching up from
   * history reads through `position` and takes the rest from the tail.
   */
  get position(): number {
    return this.handedOn;
  }

  /** Whether the tail hands on this node's stores from their acknowledgements (no consumer running). */
  get fedByAcks(): boolean {
    return this.feed === "acks";
  }

  /**
   * One of this node's stores to the stream was acknowledged (called in acknowledgement order, which
   * is the order JetStream stored them in). `text` and `headers` are what was stored.
   */
  ownStored(subject: string, seq: number, duplicate: boolean, text: string, headers: MsgHdrs | undefined): void {
    if (this.watch === undefined || this.feed === "stopped") return;
    this.watch.noteAck(seq, duplicate);
    if (this.feed !== "acks" || seq <= this.handedOn) return;
    if (!duplicate && seq === this.handedOn + 1) this.dispatch(new OwnStoredMessage(subject, seq, text, headers));
    // Someone else stored between the last message handed on and this one: the consumer reads them, and this.
    else this.openReader();
  }

  /** Listens to one match until `unlisten`. */
  listen(match: string, listener: TailListener): void {
    const current = this.listeners.get(match);
    if (current === undefined) this.listeners.set(match, listener);
    else if (current instanceof Set) current.add(listener);
    else this.listeners.set(match, new Set([current, listener]));
  }

  /** Stops one listener added by `listen`. */
  unlisten(match: string, listener: TailListener): void {
    const current = this.listeners.get(match);
    if (current === listener) this.listeners.delete(match);
    else if (current instanceof Set) {
      current.delete(listener);
      if (current.size === 1) this.listeners.set(match, current.values().next().value as TailListener);
    }
  }

  /** Not stopped (a method: `start` asks across an await, which TypeScript's narrowing does not see). */
  private running(): boolean {
    return this.feed !== "stopped";
  }

  private dispatch(m: StoredMessage): void {
    this.handedOn = m.seq;
    const match = this.matchOf(m.subject);
    const listeners = this.listeners.get(match);
    if (listeners === undefined) this.onUnclaimed(match, m);
    else if (listeners instanceof Set) for (const l of listeners) l.onTailMessage(m);
    else listeners.onTailMessage(m);
  }

  private tick(): void {
    const own = this.own;
    const watch = this.watch;
    if (!own || !watch) return;
    if (this.feed === "acks") {
      if (!own.alone()) this.openReader();
      else void this.checkAfterOwnStores(own);
      return;
    }
    if (this.feed !== "reader" || ++this.ticks * OWN_STORES_CHECK_MS < OWN_STORES_QUIET_MS) return;
    this.ticks = 0;
    if (watch.endInterval(this.handedOn) && own.alone()) {
      // Stopped in this turn: everything it delivered is handed on, so acknowledgements past
      // `handedOn` are the next messages, and nothing at or before it is handed on again.
      this.reader?.stop();
      this.reader = undefined;
      this.feed = "acks";
    }
  }

  /** A store of someone else after this node's last one (while none of this node's is in flight) brings the consumer back. */
  private async checkAfterOwnStores(own: OwnStores): Promise<void> {
    if (this.checking || own.inFlight() > 0) return;
    this.checking = true;
    try {
      const after = this.handedOn;
      const found = await own.firstStoredAfter(after);
      // Still in flight: an acknowledgement on its way may be the message found.
      if (found !== undefined && found > this.handedOn && this.feed === "acks" && own.inFlight() === 0) this.openReader();
    } catch {
      // NATS away or slow: the next check asks again (and a reconnect's stores show as holes anyway).
    } finally {
      this.checking = false;
    }
  }

  /** Starts a consumer after the last message handed on; acknowledgements are not handed on meanwhile. */
  private openReader(): void {
    if (this.feed !== "acks") return;
    this.feed = "opening";
    this.ticks = 0;
    // Reopened because of another writer: the interval that brought it back is not quiet.
    this.watch?.noteOtherWriter();
    const attempt = (): void => {
      if (this.feed !== "opening") return;
      readOrdered(this.readers, { stream: this.stream, filter: this.filter, start: { after: this.handedOn } }, (m) => this.dispatch(m)).then(
        (reader) => {
          if (this.feed !== "opening") reader.stop();
          else {
            this.reader = reader;
            this.feed = "reader";
          }
        },
        (err) => {
          this.readers.onProblem("could not start the stream tail's consumer; retrying", { stream: this.stream, err: String(err) });
          this.retry = setTimeout(attempt, REOPEN_RETRY_MS);
        },
      );
    };
    attempt();
  }
}
