import { expect, test } from "bun:test";
import type { IndexEntry } from "../actors/services.ts";
import { MatchListing } from "./matchListing.ts";

const REFRESH_MS = 1000;

function fixture(entries: Record<string, Partial<IndexEntry>>) {
  const map = new Map<string, IndexEntry>();
  for (const [match, e] of Object.entries(entries)) map.set(match, { seq: 1, ts: 0, state: {}, ...e });
  let now = 0;
  const listing = new MatchListing(map, REFRESH_MS, () => now);
  return {
    map,
    listing,
    advance: (ms: number) => {
      now += ms;
    },
    all: (limit = 100, visible: (m: string, e: IndexEntry) => boolean = () => true) => listing.page(limit, undefined, 0, visible).items.map(([m]) => m),
  };
}

test("most recently active first, ties by name; pages follow their cursor to the end", () => {
  const f = fixture({ a: { ts: 10 }, b: { ts: 30 }, c: { ts: 20 }, d: { ts: 30 }, e: { ts: 5 } });
  expect(f.all()).toEqual(["b", "d", "c", "a", "e"]);
  const first = f.listing.page(2, undefined, 0, () => true);
  expect(first.items.map(([m]) => m)).toEqual(["b", "d"]);
  expect(first.next).toBe("d");
  const second = f.listing.page(2, first.next!, 0, () => true);
  expect(second.items.map(([m]) => m)).toEqual(["c", "a"]);
  const third = f.listing.page(2, second.next!, 0, () => true);
  expect(third.items.map(([m]) => m)).toEqual(["e"]);
  expect(third.next).toBeNull();
  // A page that ends exactly at the last match has no next.
  expect(f.listing.page(5, undefined, 0, () => true).next).toBeNull();
});

test("what the caller may not see and what is older than `since` are left out before paging", () => {
  const f = fixture({ a: { ts: 50 }, p: { ts: 40, private: true }, b: { ts: 30 }, old: { ts: 1 } });
  const publicOnly = (_: string, e: IndexEntry) => e.private !== true;
  const page = f.listing.page(1, undefined, 10, publicOnly);
  expect(page.items.map(([m]) => m)).toEqual(["a"]);
  expect(page.next).toBe("a");
  const rest = f.listing.page(1, "a", 10, publicOnly);
  // p is skipped, old is before `since`: b is the last one, with no next.
  expect(rest.items.map(([m]) => m)).toEqual(["b"]);
  expect(rest.next).toBeNull();
});

test("entries are read as they are now; the order follows changes within the refresh interval", () => {
  const f = fixture({ a: { ts: 10 }, b: { ts: 20 } });
  expect(f.all()).toEqual(["b", "a"]);
  f.map.set("a", { seq: 7, ts: 30, state: { score: [1, 0] } });
  f.listing.noteChanged();
  f.map.set("c", { seq: 1, ts: 40, state: {} });
  f.listing.noteChanged();
  // Within the interval: the kept order, a's current entry, c not listed yet.
  const page = f.listing.page(10, undefined, 0, () => true);
  expect(page.items).toEqual([
    ["b", { seq: 1, ts: 20, state: {} }],
    ["a", { seq: 7, ts: 30, state: { score: [1, 0] } }],
  ]);
  f.advance(REFRESH_MS);
  expect(f.all()).toEqual(["c", "a", "b"]);
});

test("a removed match is skipped; a cursor naming a match not listed gives an empty page", () => {
  const f = fixture({ a: { ts: 10 }, b: { ts: 20 }, c: { ts: 30 } });
  expect(f.all()).toEqual(["c", "b", "a"]);
  f.map.delete("b");
  f.listing.noteChanged();
  expect(f.all()).toEqual(["c", "a"]);
  expect(f.listing.page(10, "zzz", 0, () => true)).toEqual({ items: [], next: null });
});

test("without changes the order is not rebuilt, however long it is kept", () => {
  const f = fixture({ a: { ts: 10 } });
  f.all();
  let sorts = 0;
  const sort = Array.prototype.sort;
  Array.prototype.sort = function (this: unknown[], ...args: Parameters<typeof sort>) {
    sorts++;
    return sort.apply(this, args);
  } as typeof sort;
  try {
    f.advance(10 * REFRESH_MS);
    for (let i = 0; i < 100; i++) f.all();
    expect(sorts).toBe(0);
    f.listing.noteChanged();
    f.all();
    expect(sorts).toBe(1);
  } finally {
    Array.prototype.sort = sort;
  }
});
