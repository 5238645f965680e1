/**
 * Composite ids of multiplexed streams (`GET /events?match=a&match=b`).
 *
 * A multiplexed stream interleaves matches whose event ids are independent, so a single id cannot say
 * where each match stands. Each event's id therefore lists, for every match on the stream, the id of the
 * last event of that match the client has been sent: `a:120,b:97`. `0` means "nothing yet: the snapshot
 * had no id", so a resume replays that match from its first retained event. Match ids cannot contain `:`
 * or `,`, so the format needs no escaping.
 */
export type Cursor = Map<string, number>;

/** `tag`: the log incarnation (see parseEventId), appended once as `@<tag>`. */
export function formatCursor(cursor: Cursor, tag?: string): string {
  let out = "";
  for (const [match, seq] of cursor) out += `${(out ? "," : "") + match}:${seq}`;
  return tag ? `${out}@${tag}` : out;
}

const MATCH_PART = /^([A-Za-z0-9_-]{1,64}):(\d{1,16})$/;

/**
 * Parses a composite id; unparseable parts are skipped (those matches get a snapshot instead), and an
 * id another log incarnation than `tag` issued is empty (every match gets a snapshot).
 */
export function parseCursor(raw: string | null | undefined, maxEntries: number, tag?: string): Cursor {
  const cursor: Cursor = new Map();
  if (!raw) return cursor;
  const at = raw.lastIndexOf("@");
  if (at >= 0) {
    if (tag !== undefined && raw.slice(at + 1) !== tag) return cursor;
    raw = raw.slice(0, at);
  }
  for (const part of raw.split(",", maxEntries)) {
    const m = MATCH_PART.exec(part);
    if (!m) continue;
    const seq = Number(m[2]);
    if (Number.isSafeInteger(seq)) cursor.set(m[1]!, seq);
  }
  return cursor;
}

/** Longest match id, and longest sequence and log tag an id may carry (see parseCursor, parseEventId). */
const MATCH_ID_MAX = 64;
const SEQ_MAX_DIGITS = 16;
const TAG_MAX = 16;
/** `:`, `,` and `@` are percent-encoded (3 bytes each) when a composite id rides in the query string. */
const ENCODED_EXTRA = 2;

/** Bytes of the longest composite id a stream of `maxMatches` matches can need. */
function maxCompositeIdBytes(maxMatches: number): number {
  return maxMatches * (MATCH_ID_MAX + 1 + SEQ_MAX_DIGITS) + (maxMatches - 1) + 1 + TAG_MAX;
}

/**
 * Bytes of the longest request target of a multiplexed stream: `/events?match=…` for every match, plus
 * its resume id as `&lastEventId=` (percent-encoded). A browser resuming by itself sends the id as the
 * Last-Event-ID header instead, which is no longer; it never sends both.
 */
export function maxStreamTargetBytes(maxMatches: number): number {
  const matches = "/events?".length + maxMatches * ("match=".length + MATCH_ID_MAX + 1);
  const separators = 2 * maxMatches + 1;
  return matches + "lastEventId=".length + maxCompositeIdBytes(maxMatches) + ENCODED_EXTRA * separators;
}
