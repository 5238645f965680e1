/**
 * Fuzz of the SSE encoder (src/sse/encode.ts) with arbitrary input: any UTF-16 code units (lone
 * surrogates, every control character, NUL, U+2028, BOMs) and arbitrary bytes decoded as UTF-8, as
 * ids, event names, data and comments. test/unit/sse.test.ts already round-trips strings built from
 * a fixed list of fragments; this covers what such a list leaves out.
 *
 * Each stream of messages goes on the wire as UTF-8 (what the node writes), is split into random
 * chunks and read back by the spec parser (src/sse/parse.ts): every message comes back as exactly one
 * event with its data, type and id, no retry or comment appears that was not sent, and every wire line
 * starts with one of the fields the encoder writes, so nothing can be injected.
 */
import { describe, expect, test } from "bun:test";
import { encodeComment, encodeMessage, type SseMessage } from "../../src/sse/encode.ts";
import { SseParser, type SseEvent } from "../../src/sse/parse.ts";
import { seededRandom } from "../helpers/seededRandom.ts";

const SEED = Number(process.env.SSE_FUZZ_SEED ?? 4242);
const MESSAGES = Number(process.env.SSE_FUZZ_MESSAGES ?? 20_000);
const MAX_LENGTH = 40;
const MAX_CHUNK_BYTES = 97;
const utf8 = new TextEncoder();
const utf8Loose = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

type Random = () => number;
const int = (r: Random, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

/** Any code units, biased toward the ones that matter to SSE framing. */
function arbitraryString(r: Random): string {
  let s = "";
  const n = int(r, 0, MAX_LENGTH);
  for (let i = 0; i < n; i++) {
    const roll = r();
    if (roll < 0.25) s += String.fromCharCode(int(r, 0, 0x1f));
    else if (roll < 0.35) s += "\r\n:".charAt(int(r, 0, 2));
    else if (roll < 0.45) s += String.fromCharCode(int(r, 0xd800, 0xdfff));
    else if (roll < 0.5) s += ["\u2028", "\u2029", "\ufeff", "\u0085", "\ufffd"][int(r, 0, 4)];
    else s += String.fromCharCode(int(r, 0x20, 0xffff));
  }
  return s;
}

/** Arbitrary bytes read as UTF-8 the way a payload from NATS would be (invalid sequences become U+FFFD). */
function stringFromBytes(r: Random): string {
  const bytes = new Uint8Array(int(r, 0, MAX_LENGTH));
  for (let i = 0; i < bytes.length; i++) bytes[i] = int(r, 0, 255);
  return utf8Loose.decode(bytes);
}

function arbitrary(r: Random): string {
  return r() < 0.5 ? arbitraryString(r) : stringFromBytes(r);
}

/** What reaches a reader once the text is sent as UTF-8: lone surrogates become U+FFFD. */
const onTheWire = (s: string) => s.toWellFormed();
/** Single-line fields lose CR, LF and NUL (singleLine) before going out, which can pair two surrogates up. */
const asField = (s: string) => onTheWire(s.replace(/[\r\n\0]/g, ""));
/** Data: every line end comes back as LF. */
const asData = (s: string) => onTheWire(s).replace(/\r\n?/g, "\n");

interface Parsed {
  events: SseEvent[];
  retries: number[];
  comments: string[];
}

function parseChunks(bytes: Uint8Array, r: Random): Parsed {
  const out: Parsed = { events: [], retries: [], comments: [] };
  const parser = new SseParser({ onEvent: (e) => out.events.push(e), onRetry: (ms) => out.retries.push(ms), onComment: (c) => out.comments.push(c) });
  for (let pos = 0; pos < bytes.length; ) {
    const size = int(r, 1, MAX_CHUNK_BYTES);
    parser.feedBytes(bytes.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

describe(`SSE encoder with arbitrary strings and bytes (seed ${SEED}, ${MESSAGES} messages; SSE_FUZZ_SEED / SSE_FUZZ_MESSAGES to change)`, () => {
  const r = seededRandom(SEED);
  const messages: { message: SseMessage; comment: string | undefined }[] = [];
  for (let i = 0; i < MESSAGES; i++) {
    messages.push({
      // Ids and types always present and data always present, so each message is one event.
      message: { id: arbitrary(r), event: arbitrary(r), data: arbitrary(r) },
      comment: r() < 0.1 ? arbitrary(r) : undefined,
    });
  }
  const wire = messages.map(({ message, comment }) => (comment !== undefined ? encodeComment(comment) : "") + encodeMessage(message)).join("");
  const bytes = utf8.encode(wire);

  test("every wire line is a field the encoder writes, or a blank line", () => {
    const text = utf8Loose.decode(bytes);
    const lines = text.split(/\r\n|\r|\n/);
    expect(lines.pop()).toBe("");
    const bad = lines.filter((l) => !(l === "" || l.startsWith("id: ") || l.startsWith("event: ") || l.startsWith("data: ") || l.startsWith(": ")));
    expect(bad.slice(0, 5)).toEqual([]);
  });

  test("each message comes back as one event with its data, type and id; nothing else appears", () => {
    const parsed = parseChunks(bytes, seededRandom(SEED + 1));
    expect(parsed.events.length).toBe(MESSAGES);
    expect(parsed.retries).toEqual([]);
    const expectedComments = messages.flatMap(({ comment }) => (comment === undefined ? [] : onTheWire(comment).split(/\r\n|\r|\n/)));
    expect(parsed.comments).toEqual(expectedComments);
    let mismatches = 0;
    for (let i = 0; i < MESSAGES; i++) {
      const m = messages[i]!.message;
      const want: SseEvent = { type: asField(m.event!) || "message", data: asData(m.data!), lastEventId: asField(m.id!) };
      const got = parsed.events[i]!;
      if (!Bun.deepEquals(got, want) && mismatches++ < 5) expect({ i, message: m, got }).toEqual({ i, message: m, got: want });
    }
    expect(mismatches).toBe(0);
  });

  test("a payload that spells out fields stays inside its own data", () => {
    const hostile = "\n\nid: 666\nevent: evil\nretry: 1\ndata: injected\n\n: comment\r\n\r\n";
    const parsed = parseChunks(utf8.encode(encodeMessage({ id: hostile, event: hostile, data: hostile })), seededRandom(SEED + 2));
    expect(parsed.events).toEqual([{ type: asField(hostile), data: asData(hostile), lastEventId: asField(hostile) }]);
    expect(parsed.retries).toEqual([]);
    expect(parsed.comments).toEqual([]);
  });
});
