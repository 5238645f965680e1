/**
 * MatchIndex: every match with events within retention, for `GET /matches`. A KV bucket written by each
 * match's owner (bucket max age = retention), watched by every node into this in-memory copy, so listing
 * never touches NATS. It is also where a new owner finds the state to start from instead of replaying a
 * match from its first event (it reads the log after the entry's seq, so a stale entry costs a longer
 * read, never a wrong state).
 *
 * Writes are coalesced: an owner notes its match's entry after every event (seen at once by this node),
 * and the newest entry is written later, once more on stop. A new match (no entry known here before)
 * and an ended one are written at the next flush (every `flushMs`), so every node lists them within
 * about a second; a change to a match already listed waits up to `refreshMs` (5 s by default) with the
 * changes after it. A match with an event a second, as in a league of matches each updated every
 * second, costs the bucket one write per `refreshMs` instead of one per event: that write was a second
 * JetStream store beside every event's own (7% of the server CPU per delivery with 500 matches at an
 * event a second each, bench/channelsAB.ts). What waits is only the other nodes' copy: this node's
 * listing is current at once, a new owner starting from an older entry reads the log from its seq, and
 * the checks made against another node's copy (an ended match, the state's size) are the soft ones.
 * A flush writes at most FLUSH_MAX_ENTRIES (new and ended matches first, then the longest waiting),
 * pipelined: after one event to each of 20,000 matches the entries go out over a few seconds instead of
 * 20,000 requests in one go stalling the node.
 */
import type { BucketWatch } from "../bus/bucketWatch.ts";
import type { IndexEntry } from "../actors/services.ts";
import { decodeWire, encodeWire } from "../bus/wireCodec.ts";
import { type ListingPage, MatchListing } from "./matchListing.ts";

/** Entries one flush writes at most; the rest wait for the next flush. */
const FLUSH_MAX_ENTRIES = 2000;
/** A flush writes this many entries per turn of the event loop, so 2,000 puts never hold it at once. */
const FLUSH_ENTRIES_PER_TURN = 50;
/**
 * Entries older than retention are dropped this often. The bucket's max age removes their values
 * without telling the watchers, so a node's copy kept every match it ever saw: a node up for weeks
 * held them all (their states included) for a listing that filters them out.
 */
const PRUNE_EVERY_MS = 60_000;
/** What KV accepts as a key (a match published straight to NATS may be named otherwise). */
const KV_KEY = /^[-/_=.a-zA-Z0-9]+$/;

/** Stores one entry in the bucket (a KV put: a JetStream publish on the key's subject). */
export type IndexPut = (key: string, value: Uint8Array) => Promise<unknown>;

export interface MatchIndexOptions {
  /**
   * An entry of a match this copy did not list before came through the watch. A node that joined
   * before the entry was flushed checks the match here if it is its own (MatchHub.keepCurrentSoon):
   * nothing else would (the ring change that gave it the match found no entry, and the event is older
   * than its tail).
   */
  onNewMatch?: (match: string, entry: IndexEntry) => void;
  /**
   * The log incarnation the entries describe (match/event.ts logTag). Entries written carry it, and
   * entries of another read from the bucket are ignored: a node that has not yet seen the log start
   * over can still write its entries of the lost log into the new bucket, and an owner starting from
   * one would take its seq for the new log's.
   */
  logTag?: string;
  /** Entries with no event for this long are dropped (RETENTION: their events are gone from the log); default never. */
  retentionMs?: number;
}

export class MatchIndex {
  private readonly entries_ = new Map<string, IndexEntry>();
  private readonly listing = new MatchListing(this.entries_);
  private lastPruneAt = Date.now();
  private watcher: { stop(): void } | undefined;
  /** New and ended matches' entries noted since their last write, newest per match: written at the next flush. */
  private urgent = new Map<string, IndexEntry>();
  /** Other entries noted since their last write, newest per match, in the order they became due. */
  private dirty = new Map<string, { entry: IndexEntry; dueAt: number }>();
  private flushTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly put: IndexPut,
    private readonly watch: BucketWatch,
    private readonly flushMs: number,
    /**
     * Writes of one flush failed (NATS away: a flush can hold 2,000): reported once per flush, with how
     * many and the first one's match and error, so an outage logs a line a second, not thousands.
     */
    private readonly onWritesFailed: (failed: number, first: { match: string; err: unknown }) => void,
    private readonly opts: MatchIndexOptions = {},
    /** A change to a match already listed is written at most this long after it was noted. */
    private readonly refreshMs = flushMs,
  ) {}

  /** Notes a match's newest entry: listed here at once, written to the bucket later (see above). */
  write(match: string, entry: IndexEntry): void {
    const known = this.entries_.has(match);
    this.noteLocal(match, entry);
    if (!known || entry.ended === true || this.urgent.has(match)) {
      this.urgent.set(match, entry);
      this.dirty.delete(match);
      return;
    }
    const noted = this.dirty.get(match);
    if (noted !== undefined) noted.entry = entry;
    else this.dirty.set(match, { entry, dueAt: Date.now() + this.refreshMs });
  }

  /**
   * Writes the entries that are due (`all`: every entry noted). Failed writes are reported; the next
   * event notes its match again.
   */
  async flush(all = false): Promise<void> {
    if (this.urgent.size === 0 && this.dirty.size === 0) return;
    const now = Date.now();
    const writes: Promise<{ match: string; err: unknown } | undefined>[] = [];
    const taken: string[] = [];
    for (const match of this.urgent.keys()) {
      if (taken.length >= FLUSH_MAX_ENTRIES) break;
      taken.push(match);
    }
    for (const [match, { dueAt }] of this.dirty) {
      if (taken.length >= FLUSH_MAX_ENTRIES || (!all && dueAt > now)) break;
      taken.push(match);
    }
    for (const [i, match] of taken.entries()) {
      if (i > 0 && i % FLUSH_ENTRIES_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
      // Noted again meanwhile, or written by a flush that ran while this one waited: the newest is taken.
      const noted = this.urgent.get(match) ?? this.dirty.get(match)?.entry;
      if (noted === undefined) continue;
      this.urgent.delete(match);
      this.dirty.delete(match);
      if (!KV_KEY.test(match)) continue; // not listable across nodes; this node's copy still has it
      const { endedHere: _local, stateBytesAtMost: _bound, ...entry } = noted;
      writes.push(
        this.put(match, encodeWire(this.opts.logTag === undefined ? entry : { ...entry, tag: this.opts.logTag })).then(
          () => undefined,
          (err: unknown) => ({ match, err }),
        ),
      );
    }
    const failures = (await Promise.all(writes)).filter((f) => f !== undefined);
    if (failures.length > 0) this.onWritesFailed(failures.length, failures[0]!);
  }

  async start(): Promise<void> {
    this.flushTimer = setInterval(() => {
      this.pruneIfDue(Date.now());
      void this.flush();
    }, this.flushMs);
    this.watcher = await this.watch((e) => {
      if (e.operation !== "PUT") {
        this.entries_.delete(e.key);
        this.listing.noteChanged();
      } else {
        let entry: IndexEntry;
        try {
          const { tag, ...stored } = decodeWire<IndexEntry & { tag?: string }>(e.value);
          if (tag !== undefined && this.opts.logTag !== undefined && tag !== this.opts.logTag) return; // of a lost log
          entry = stored;
        } catch {
          return; // not an index entry: ignore
        }
        const isNew = !this.entries_.has(e.key);
        this.noteLocal(e.key, entry);
        if (isNew) this.opts.onNewMatch?.(e.key, entry);
      }
    });
  }

  /**
   * Stops watching. On shutdown (`flush`) what is still noted is written first. When the log started
   * over, it is dropped: those entries name seqs and states of the lost log, and written into the new
   * bucket they would be taken as the new log's (an owner starting from one would skip the new events
   * up to its seq).
   */
  async stop(flush = true): Promise<void> {
    clearInterval(this.flushTimer);
    if (flush) while (this.urgent.size > 0 || this.dirty.size > 0) await this.flush(true);
    this.urgent.clear();
    this.dirty.clear();
    this.watcher?.stop();
  }

  /** Records an entry unless a newer one is already known (writes from two owners can cross). */
  noteLocal(match: string, entry: IndexEntry): void {
    const known = this.entries_.get(match);
    if (known && known.seq > entry.seq) return;
    // Known only to the node the final event was published through: outlives the owner's entries.
    const endedHere = known?.endedHere;
    this.entries_.set(match, endedHere !== undefined ? { ...entry, endedHere } : entry);
    this.listing.noteChanged();
  }

  /** Drops the entries older than retention, once every PRUNE_EVERY_MS. Returns how many went. */
  pruneIfDue(now: number): number {
    if (now - this.lastPruneAt < PRUNE_EVERY_MS) return 0;
    this.lastPruneAt = now;
    const before = now - (this.opts.retentionMs ?? Number.POSITIVE_INFINITY);
    let dropped = 0;
    for (const [match, entry] of this.entries_) {
      if (entry.ts >= before || this.dirty.has(match) || this.urgent.has(match)) continue;
      this.entries_.delete(match);
      dropped++;
    }
    if (dropped > 0) this.listing.noteChanged();
    return dropped;
  }

  /** A final event was stored through this node: the match is ended here at once (see IndexEntry.endedHere). */
  noteEndedHere(match: string, seq: number, key: string | undefined): void {
    const known = this.entries_.get(match) ?? { seq: 0, ts: Date.now(), state: {} };
    this.entries_.set(match, { ...known, endedHere: key !== undefined ? { seq, key } : { seq } });
    this.listing.noteChanged();
  }

  get(match: string): IndexEntry | undefined {
    return this.entries_.get(match);
  }

  entries(): IterableIterator<[string, IndexEntry]> {
    return this.entries_.entries();
  }

  /**
   * Most recently active first, within retention (matchListing.ts); `cursor` is the last match of the
   * previous page. `visible` filters before paging, so a page's cursor never names a match the caller
   * may not see.
   */
  list(limit: number, cursor: string | undefined, visible: (match: string, entry: IndexEntry) => boolean = () => true): ListingPage {
    return this.listing.page(limit, cursor, Date.now() - (this.opts.retentionMs ?? Number.POSITIVE_INFINITY), visible);
  }
}
