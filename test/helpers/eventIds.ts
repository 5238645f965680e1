/**
 * Event ids as the tests see them (DESIGN.md, "Event ids"): opaque strings `<seq>@<tag>`, where `<seq>`
 * is the JetStream sequence and `<tag>` (base-36, lowercase) names the log's incarnation; composite ids
 * of multiplexed streams are `a:120,b:97@<tag>` (the tag once, at the end).
 *
 * These helpers are strict: an id without a tag, or not of the form, throws, so a test that compares
 * sequences also checks that every id it compares has the new form. Parsing reuses src/match.
 */
import { formatCursor, parseCursor, type Cursor } from "../../src/match/cursor.ts";
import { formatEventId, parseEventId } from "../../src/match/event.ts";

/** The exact form of a single-match event id. */
export const EVENT_ID = /^\d+@[0-9a-z]+$/;
/** The exact form of a composite id: one `match:seq` per match, then the tag once. */
export const COMPOSITE_ID = /^[A-Za-z0-9_-]{1,64}:\d+(?:,[A-Za-z0-9_-]{1,64}:\d+)*@[0-9a-z]+$/;

const TAG = /@([0-9a-z]{1,16})$/;

/** The tag of an event id or composite id; throws when it carries none. */
export function tagOf(id: string): string {
  const m = TAG.exec(id);
  if (!m) throw new Error(`id ${JSON.stringify(id)} carries no log tag`);
  return m[1]!;
}

/** The JetStream sequence of a single-match event id `<seq>@<tag>`; throws for anything else. */
export function seqOf(id: string): number {
  const seq = EVENT_ID.test(id) ? parseEventId(id, tagOf(id)) : undefined;
  if (seq === undefined) throw new Error(`id ${JSON.stringify(id)} is not <seq>@<tag>`);
  return seq;
}

/** The per-match sequences of a composite id `a:120,b:97@<tag>`; throws for anything else. */
export function cursorOf(id: string): Cursor {
  if (!COMPOSITE_ID.test(id)) throw new Error(`id ${JSON.stringify(id)} is not a composite id with a tag`);
  return parseCursor(id, id.split(",").length, tagOf(id));
}

/** Orders event ids by sequence (for sort). */
export function bySeq(a: string, b: string): number {
  return seqOf(a) - seqOf(b);
}

/** An event id of `seq` under `tag`. */
export function idOf(seq: number, tag: string): string {
  return formatEventId(seq, tag);
}

/** A composite id of `entries` (`[match, seq]`, in stream order) under `tag`. */
export function compositeOf(entries: [string, number][], tag: string): string {
  return formatCursor(new Map(entries), tag);
}

/** The one tag every given id carries; throws when there is none, or when they differ. */
export function commonTag(ids: string[]): string {
  if (ids.length === 0) throw new Error("no ids to take a tag from");
  const tags = new Set(ids.map(tagOf));
  if (tags.size !== 1) throw new Error(`ids carry ${tags.size} tags: ${[...tags].join(", ")}`);
  return [...tags][0]!;
}
