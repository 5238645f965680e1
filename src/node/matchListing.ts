/**
 * MatchListing: `GET /matches` pages over the match index, most recently active first.
 *
 * Sorting every entry for every request cost 5 ms of the event loop per page at 20,000 matches, and
 * paging through them all 1.1 s (each page sorted everything again and searched for its cursor): a
 * client walking the list, or a scraper polling it, held the node's loop for as long. The order is
 * kept instead, rebuilt on a request when entries changed and it is older than `refreshMs`, and a page
 * reads from its cursor's position: a page costs about its length. Entries are read as they are now
 * (ids and states current); only the order may be up to `refreshMs` behind, as the other nodes' copies
 * of the index are (a listed match's entry is written every INDEX_REFRESH at most).
 */
import type { IndexEntry } from "../actors/services.ts";

/** How old the order may get while entries change. */
export const LISTING_ORDER_MS = 1000;

export interface ListingPage {
  items: [string, IndexEntry][];
  /** The last match of this page when more follow, else null. */
  next: string | null;
}

export class MatchListing {
  private order: string[] = [];
  private readonly positions = new Map<string, number>();
  private builtAt = Number.NEGATIVE_INFINITY;
  private changed = true;

  constructor(
    private readonly entries: ReadonlyMap<string, IndexEntry>,
    private readonly refreshMs = LISTING_ORDER_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** An entry was added, replaced or removed. */
  noteChanged(): void {
    this.changed = true;
  }

  /**
   * Up to `limit` matches active since `since` (ms since epoch) that `visible` lets the caller see,
   * after `cursor` (the last match of the previous page; one not listed gives an empty page).
   */
  page(limit: number, cursor: string | undefined, since: number, visible: (match: string, entry: IndexEntry) => boolean): ListingPage {
    this.refresh();
    let at = 0;
    if (cursor !== undefined) {
      const position = this.positions.get(cursor);
      at = position === undefined ? this.order.length : position + 1;
    }
    const listed = (match: string): IndexEntry | undefined => {
      const entry = this.entries.get(match);
      return entry !== undefined && entry.ts >= since && visible(match, entry) ? entry : undefined;
    };
    const items: [string, IndexEntry][] = [];
    for (; at < this.order.length && items.length < limit; at++) {
      const match = this.order[at] as string;
      const entry = listed(match);
      if (entry) items.push([match, entry]);
    }
    // A next page only when one more match would be on it.
    for (; at < this.order.length; at++) {
      if (listed(this.order[at] as string)) return { items, next: items.at(-1)?.[0] ?? null };
    }
    return { items, next: null };
  }

  private refresh(): void {
    const now = this.now();
    if (!this.changed || now - this.builtAt < this.refreshMs) return;
    const byActivity = [...this.entries].sort((a, b) => b[1].ts - a[1].ts || (a[0] < b[0] ? -1 : 1));
    this.order = byActivity.map(([match]) => match);
    this.positions.clear();
    for (const [i, match] of this.order.entries()) this.positions.set(match, i);
    this.builtAt = now;
    this.changed = false;
  }
}
