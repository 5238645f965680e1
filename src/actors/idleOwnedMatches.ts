/**
 * IdleOwnedMatches: matches this node owns that no actor serves, kept current without one.
 *
 * For a match nobody watches, all its owner has to do is keep the match's index entry (its state and
 * last seq, behind `GET /matches` and behind every later start of an actor) up to date, and that is a
 * fold of each event's state patch into the entry. An owner actor for it cost a lease place, a follow
 * of the log with two reads, a window and its objects: 20,000 idle matches grew a node by 14.4 KiB of
 * resident memory each with actors, 1.6 KiB without (bench "matches"). So the stream tail's events of
 * an owned match no actor follows are folded here, and an actor starts only when one is needed: a
 * client, another node's sync, a state read (MatchHub.get), or a fold that cannot be proven exact.
 *
 * Exactness: a fold is right only onto the entry of the match's previous event. The tail hands on every
 * message of the stream once, in order, so `folded` remembers per match the seq of the last event
 * folded here: while the entry is still at that seq, every later message of the match came here, and
 * the next one folds directly. Whatever could have sent one elsewhere forgets the match first: an
 * actor starting for it (`forget`), the ring moving its shard (`shardsMoved`), NATS reconnecting or the
 * log changing (`clear`). Otherwise the match is checked once: the seq of its first stored message
 * after the entry's (one direct get) must be the event's own, or something lies between and an actor
 * starts, which reads the log from the entry as before.
 */
import type { Context } from "@opentelemetry/api";
import type { LoggedEvent } from "../bus/matchLog.ts";
import { type BoundedState, patchWithin } from "../match/stateSize.ts";
import { shardOf } from "../cluster/shards.ts";
import type { IndexEntry, MatchServices } from "./services.ts";

export interface IdleOwnerHost {
  /** An actor serves the match or is about to start: it reads the log itself, nothing is folded here. */
  hasActor(match: string): boolean;
  /** Starts the match's owner actor (soon, if the ring still gives this node the match then). */
  startOwner(match: string): void;
}

interface TailEvent {
  event: LoggedEvent;
  trace: Context | undefined;
}

/** Events of one match held while its entry is checked against the log, and the clearing they began under. */
interface Check {
  afterSeq: number;
  events: TailEvent[];
  generation: number;
}

export class IdleOwnedMatches {
  /** By shard (ring moves come per shard), then match: the seq of the last event folded into its entry here. */
  private readonly folded = new Map<number, Map<string, number>>();
  private readonly checking = new Map<string, Check>();
  /** Bumped by every clearing: a check that began before one proves nothing after it. */
  private generation = 0;

  constructor(
    private readonly svc: MatchServices,
    private readonly host: IdleOwnerHost,
  ) {}

  /** Matches held here (owned, current in the index, no actor). */
  get size(): number {
    let held = 0;
    for (const matches of this.folded.values()) held += matches.size;
    return held;
  }

  /** An event off the stream tail, in stream order, of a match this node owns and no actor follows. */
  take(event: LoggedEvent, trace: Context | undefined): void {
    const match = event.match;
    const check = this.checking.get(match);
    if (check) {
      check.events.push({ event, trace });
      return;
    }
    const entry = this.svc.readIndex(match);
    const last = this.folded.get(shardOf(match))?.get(match);
    if (last !== undefined && entry !== undefined && entry.seq === last) {
      this.fold(match, entry, [{ event, trace }]);
      return;
    }
    this.check(match, entry?.seq ?? 0, [{ event, trace }]);
  }

  /**
   * A match that came to this node with no event yet (see MatchHub.keepCurrentSoon): held here if nothing
   * is stored after its entry, else its owner actor starts.
   */
  adopt(match: string): void {
    if (this.checking.has(match) || this.folded.get(shardOf(match))?.has(match)) return;
    const entry = this.svc.readIndex(match);
    if (entry !== undefined) this.check(match, entry.seq, []);
  }

  /** An actor now serves the match: what it applies moves the entry, so folding here would be guessing. */
  forget(match: string): void {
    const shard = this.folded.get(shardOf(match));
    if (shard?.delete(match)) this.released(match, this.svc.selfId);
    // A check under way ends in a start, which finds the actor and leaves it be.
    const check = this.checking.get(match);
    if (check) check.generation = -1;
  }

  /** The ring moved these shards: their events may have gone to another owner meanwhile. */
  shardsMoved(shards: ReadonlySet<number>): void {
    for (const shard of shards) {
      const matches = this.folded.get(shard);
      if (!matches) continue;
      this.folded.delete(shard);
      // Every match of a shard has the shard's owner: looked up once, not per match (a join moves
      // thousands of idle matches at once).
      let to: string | undefined;
      for (const match of matches.keys()) this.released(match, (to ??= this.svc.ownerOf(match) ?? "unknown"));
    }
    this.generation++;
  }

  /** NATS reconnected or the log changed: nothing folded before is trusted. */
  clear(): void {
    const all = [...this.folded.values()];
    this.folded.clear();
    for (const matches of all) for (const match of matches.keys()) this.released(match, this.svc.selfId);
    this.generation++;
  }

  /**
   * No longer held here. Counted as ownership moving out, as an owner actor stopping is: owned matches
   * change by moves in minus moves out (a client's arrival hands the match to an actor, which counts in).
   */
  private released(match: string, to: string): void {
    this.svc.telemetry.ownershipMoved(match, "out", to);
  }

  /** Holds `events` (more may join them) while the match's first message stored after `afterSeq` is asked. */
  private check(match: string, afterSeq: number, events: TailEvent[]): void {
    this.checking.set(match, { afterSeq, events, generation: this.generation });
    void this.settleCheck(match, afterSeq);
  }

  private async settleCheck(match: string, afterSeq: number): Promise<void> {
    let first: number | undefined;
    try {
      first = await this.svc.log.firstStoredAfter(match, afterSeq);
    } catch {
      first = undefined;
    }
    const check = this.checking.get(match);
    this.checking.delete(match);
    if (!check) return;
    const entry = this.svc.readIndex(match);
    // Exact when the first message stored after the entry is the first event held (none, for an adopted
    // match: the entry is current).
    const exact = check.generation === this.generation && first === check.events[0]?.event.seq && (entry?.seq ?? 0) === afterSeq && !this.host.hasActor(match);
    if (exact) {
      if (entry !== undefined || check.events.length > 0) this.fold(match, entry, check.events);
    }
    // Events between the entry and these (or a read that failed, or a clearing meanwhile): an actor
    // reads the log from the entry, these included, since the tail handed them on before it listens.
    else this.host.startOwner(match);
  }

  private fold(match: string, entry: IndexEntry | undefined, events: TailEvent[]): void {
    let seq = entry?.seq ?? 0;
    let ts = entry?.ts ?? 0;
    let bounded: BoundedState = { state: entry?.state ?? {}, bytesAtMost: entry?.stateBytesAtMost };
    let isPrivate = entry?.private === true;
    let ended = entry?.ended === true;
    const spans = this.svc.telemetry.spans;
    for (const { event, trace } of events) {
      if (ended) {
        this.svc.telemetry.warn("an event after the match's final event is not streamed", { match, seq: event.seq });
        continue;
      }
      spans.startIngest(match, event.seq, trace)?.end();
      const patched = patchWithin(bounded, event.state, this.svc.maxStateBytes);
      if (patched) bounded = patched;
      else this.svc.telemetry.warn("a state patch that would pass MAX_STATE_BYTES is not applied", { match, seq: event.seq });
      if (event.private) isPrivate = true;
      if (event.final) ended = true;
      seq = event.seq;
      ts = event.ts;
    }
    if (seq !== (entry?.seq ?? 0)) {
      const { state, bytesAtMost } = bounded;
      this.svc.writeIndex(match, {
        seq,
        ts,
        state,
        ...(bytesAtMost !== undefined ? { stateBytesAtMost: bytesAtMost } : {}),
        ...(isPrivate ? { private: true } : {}),
        ...(ended ? { ended: true } : {}),
      });
    }
    const shard = shardOf(match);
    let matches = this.folded.get(shard);
    if (!matches) this.folded.set(shard, (matches = new Map()));
    if (!matches.has(match)) this.svc.telemetry.ownershipMoved(match, "in", this.svc.selfId);
    matches.set(match, seq);
  }
}
