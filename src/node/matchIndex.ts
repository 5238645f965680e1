/**
 * MatchIndex: every match with events within retention, for `GET /matches`. A KV bucket written by each
 * match's owner after it applies an event (bucket max age = retention), watched by every node into this
 * in-memory copy, so listing never touches NATS. It is also where a new owner finds the state to start
 * from instead of replaying a match from its first event.
 */
import type { KV } from "@nats-io/kv";
import type { BucketWatch } from "../bus/bucketWatch.ts";
import type { IndexEntry } from "../actors/services.ts";
import { decodeWire } from "../bus/wireCodec.ts";

export class MatchIndex {
  private readonly entries_ = new Map<string, IndexEntry>();
  private watcher: { stop(): void } | undefined;

  constructor(
    private readonly kv: KV,
    private readonly watch: BucketWatch,
  ) {}

  async start(): Promise<void> {
    this.watcher = await this.watch((e) => {
      if (e.operation !== "PUT") this.entries_.delete(e.key);
      else {
        try {
          this.noteLocal(e.key, decodeWire<IndexEntry>(e.value));
        } catch {
          /* not an index entry: ignore */
        }
      }
    });
  }

  stop(): void {
    this.watcher?.stop();
  }

  /** Records an entry unless a newer one is already known (writes from two owners can cross). */
  noteLocal(match: string, entry: IndexEntry): void {
    const known = this.entries_.get(match);
    if (!known || known.seq <= entry.seq) this.entries_.set(match, entry);
  }

  get(match: string): IndexEntry | undefined {
    return this.entries_.get(match);
  }

  async fetch(match: string): Promise<IndexEntry | undefined> {
    const e = await this.kv.get(match);
    if (!e || e.operation !== "PUT") return undefined;
    return decodeWire<IndexEntry>(e.value);
  }

  entries(): IterableIterator<[string, IndexEntry]> {
    return this.entries_.entries();
  }

  /**
   * Most recently active first; `cursor` is the last match of the previous page. `visible` filters
   * before paging, so a page's cursor never names a match the caller may not see.
   */
  list(
    limit: number,
    cursor: string | undefined,
    retentionMs: number,
    visible: (match: string, entry: IndexEntry) => boolean = () => true,
  ): { items: [string, IndexEntry][]; next: string | null } {
    const since = Date.now() - retentionMs;
    const all = [...this.entries_].filter(([m, e]) => e.ts >= since && visible(m, e)).sort((a, b) => b[1].ts - a[1].ts || (a[0] < b[0] ? -1 : 1));
    let start = 0;
    if (cursor) {
      const i = all.findIndex(([m]) => m === cursor);
      start = i >= 0 ? i + 1 : all.length;
    }
    const items = all.slice(start, start + limit);
    const next = start + limit < all.length ? (items[items.length - 1]?.[0] ?? null) : null;
    return { items, next };
  }
}
