/**
 * StreamTail: this node's one live reader of the event stream, shared by every match it owns.
 *
 * One ordered consumer over every match subject, from "now", instead of one consumer per owned match:
 * a node's JetStream consumers, pulls and heartbeats no longer grow with the matches it owns (20,000
 * owned matches held 20,102 consumers before). Each message is handed to the listeners of its match,
 * in stream order; a message of a match with no listener is reported once to `onUnclaimed`, which is how
 * an owner hears of a match it should start (discovery). The reader survives losing the NATS server
 * it lived on and resumes after the last message it handed on (orderedReader.ts), so every message
 * after `position` reaches the listeners registered at that moment, exactly once.
 */
import type { JsMsg } from "@nats-io/jetstream";
import { type OrderedReader, type ReaderContext, readOrdered } from "./orderedReader.ts";

/** Messages per pull: the tail carries every event of the cluster. */
const TAIL_BATCH = 1000;

export type TailListener = (m: JsMsg) => void;

export class StreamTail {
  private reader: OrderedReader | undefined;
  private readonly listeners = new Map<string, Set<TailListener>>();

  constructor(
    private readonly readers: ReaderContext,
    private readonly stream: string,
    private readonly filter: string,
    private readonly matchOf: (subject: string) => string,
    private readonly onUnclaimed: (match: string) => void,
  ) {}

  async start(): Promise<void> {
    this.reader = await readOrdered(this.readers, { stream: this.stream, filter: this.filter, start: "new", batch: TAIL_BATCH }, (m) => this.dispatch(m));
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

  /** Listens to one match; returns the function that stops it. */
  listen(match: string, listener: TailListener): () => void {
    let set = this.listeners.get(match);
    if (!set) {
      set = new Set();
      this.listeners.set(match, set);
    }
    set.add(listener);
    return () => {
      const s = this.listeners.get(match);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) this.listeners.delete(match);
    };
  }

  private dispatch(m: JsMsg): void {
    const match = this.matchOf(m.subject);
    const set = this.listeners.get(match);
    if (!set) {
      this.onUnclaimed(match);
      return;
    }
    for (const l of set) l(m);
  }
}
