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
  for (const [match, seq] of cursor) out += (out ? "," : "") + match + ":" + seq;
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
