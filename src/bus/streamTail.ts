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
 */
import { type OrderedReader, type ReaderContext, readOrdered, type StoredMessage } from "./orderedReader.ts";

/** A reader of one match's messages off the tail (an object, not a closure: one per followed match). */
export interface TailListener {
  onTailMessage(m: StoredMessage): void;
}

export class StreamTail {
  private reader: OrderedReader | undefined;
  /** One listener per match almost always (its owner's follow): a Set only when there are more. */
  private readonly listeners = new Map<string, TailListener | Set<TailListener>>();

  constructor(
    private readonly readers: ReaderContext,
    private readonly stream: string,
    private readonly filter: string,
    private readonly matchOf: (subject: string) => string,
    private readonly onUnclaimed: (match: string, m: StoredMessage) => void,
  ) {}

  async start(): Promise<void> {
    this.reader = await readOrdered(this.readers, { stream: this.stream, filter: this.filter, start: "new" }, (m) => this.dispatch(m));
  }

  stop(): void {
    this.reader?.stop();
    this.reader = undefined;
  }

  /**
   * The stream sequence of the last message handed on (at start, the stream's last sequence). A
   * listener added now receives every message of its match after this, so a reader catching up from
   * history reads through `position` and takes the rest from the tail.
   */
  get position(): number {
    return this.reader?.position() ?? 0;
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

  private dispatch(m: StoredMessage): void {
    const match = this.matchOf(m.subject);
    const listeners = this.listeners.get(match);
    if (listeners === undefined) this.onUnclaimed(match, m);
    else if (listeners instanceof Set) for (const l of listeners) l.onTailMessage(m);
    else listeners.onTailMessage(m);
  }
}
