import { describe, expect, test } from "bun:test";
import { encodeComment, encodeMessage, encodeRetry, singleLine, type SseMessage } from "./encode.ts";
import { SseParser, type SseEvent } from "./parse.ts";
import { seededRandom } from "../../test/helpers/seededRandom";

interface Parsed {
  events: SseEvent[];
  retries: number[];
  comments: string[];
}

function newCollector(): { parser: SseParser; out: Parsed } {
  const out: Parsed = { events: [], retries: [], comments: [] };
  const parser = new SseParser({
    onEvent: (event) => out.events.push(event),
    onRetry: (ms) => out.retries.push(ms),
    onComment: (text) => out.comments.push(text),
  });
  return { parser, out };
}

function parseText(...chunks: string[]): Parsed {
  const { parser, out } = newCollector();
  for (const chunk of chunks) parser.feed(chunk);
  return out;
}

function parseBytes(...chunks: Uint8Array[]): Parsed {
  const { parser, out } = newCollector();
  for (const chunk of chunks) parser.feedBytes(chunk);
  return out;
}

function message(data: string, type = "message", lastEventId = ""): SseEvent {
  return { type, data, lastEventId };
}

const utf8 = new TextEncoder();

const SEED = Number(process.env.SSE_TEST_SEED ?? 0x5eed);

describe("encode", () => {
  test("writes fields in the order id, event, retry, data and ends with a blank line", () => {
    expect(encodeMessage({ data: "d", retry: 5, event: "goal", id: "7" })).toBe("id: 7\nevent: goal\nretry: 5\ndata: d\n\n");
  });

  test("splits data on CRLF, CR and LF, one data line each, keeping empty lines", () => {
    expect(encodeMessage({ data: "a\r\nb\rc\nd" })).toBe("data: a\ndata: b\ndata: c\ndata: d\n\n");
    expect(encodeMessage({ data: "\n\r\r\n" })).toBe("data: \ndata: \ndata: \ndata: \n\n");
    expect(encodeMessage({ data: "end\n" })).toBe("data: end\ndata: \n\n");
  });

  test("empty data still gets a data line; undefined data gets none", () => {
    expect(encodeMessage({ data: "" })).toBe("data: \n\n");
    expect(encodeMessage({ id: "3" })).toBe("id: 3\n\n");
    expect(encodeMessage({})).toBe("\n");
  });

  test("writes one space after the colon so a value starting with a space survives", () => {
    expect(encodeMessage({ data: " x", event: " e" })).toBe("event:  e\ndata:  x\n\n");
  });

  test("id and event lose CR, LF and NUL", () => {
    expect(singleLine("a\r\nb\0c\rd\ne")).toBe("abcde");
    expect(singleLine("plain")).toBe("plain");
    expect(encodeMessage({ id: "1\n\ndata: evil", event: "x\rid: 9" })).toBe("id: 1data: evil\nevent: xid: 9\n\n");
  });

  test("comments get one colon line per line", () => {
    expect(encodeComment("ping")).toBe(": ping\n\n");
    expect(encodeComment("a\r\nb\rc\n")).toBe(": a\n: b\n: c\n: \n\n");
    expect(encodeComment("")).toBe(": \n\n");
  });

  test("retry takes non-negative integers only", () => {
    expect(encodeRetry(0)).toBe("retry: 0\n\n");
    expect(encodeRetry(1500)).toBe("retry: 1500\n\n");
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1e21]) {
      expect(() => encodeRetry(bad)).toThrow(RangeError);
      expect(() => encodeMessage({ retry: bad })).toThrow(RangeError);
    }
  });
});

describe("parse: fields", () => {
  test('data with no event field dispatches a "message" event', () => {
    expect(parseText("data: hello\n\n").events).toEqual([message("hello")]);
  });

  test("event sets the type of the next dispatched event only", () => {
    expect(parseText("event: goal\ndata: 1\n\ndata: 2\n\n").events).toEqual([message("1", "goal"), message("2")]);
  });

  test('an empty event field falls back to "message"', () => {
    expect(parseText("event:\ndata: x\n\n").events).toEqual([message("x")]);
  });

  test("id persists across later events and is visible on the parser", () => {
    const { parser, out } = newCollector();
    parser.feed("id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n");
    expect(out.events).toEqual([message("a", "message", "1"), message("b", "message", "1"), message("c", "message", "2")]);
    expect(parser.lastEventId).toBe("2");
  });

  test("an id field without a value clears the last event id", () => {
    expect(parseText("id: 1\ndata: a\n\nid\ndata: b\n\n").events).toEqual([message("a", "message", "1"), message("b")]);
  });

  test("an id containing NUL is ignored", () => {
    const { parser, out } = newCollector();
    parser.feed("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n");
    expect(out.events).toEqual([message("a", "message", "1"), message("b", "message", "1")]);
    expect(parser.lastEventId).toBe("1");
  });

  test("a blank line sets the last event id even when no event is dispatched", () => {
    const { parser, out } = newCollector();
    parser.feed("id: 7\n\n");
    expect(out.events).toEqual([]);
    expect(parser.lastEventId).toBe("7");
    parser.feed("data: x\n\n");
    expect(out.events).toEqual([message("x", "message", "7")]);
  });

  test("the event carries the id buffer as it is at dispatch time", () => {
    expect(parseText("data: a\nid: 5\ndata: b\n\n").events).toEqual([message("a\nb", "message", "5")]);
  });

  test("multi-line data with CRLF, CR and LF line ends joins with LF", () => {
    const out = parseText("data: a\r\ndata: b\rdata: c\ndata\ndata:\r\n\r\n");
    expect(out.events).toEqual([message("a\nb\nc\n\n")]);
  });

  test("removes exactly one leading space from the value", () => {
    expect(parseText("data:  two\n\ndata:none\n\n").events).toEqual([message(" two"), message("none")]);
  });

  test("splits field and value at the first colon", () => {
    expect(parseText("data: a:b: c\n\n").events).toEqual([message("a:b: c")]);
  });

  test("unknown fields and wrongly cased names are ignored", () => {
    expect(parseText("foo: bar\nDATA: x\nData: y\nevent2: z\ndata: ok\n\n").events).toEqual([message("ok")]);
  });

  test("an empty data field dispatches an event with empty data", () => {
    expect(parseText("data\n\ndata:\n\n").events).toEqual([message(""), message("")]);
  });

  test("an event without data is not dispatched and its type does not leak", () => {
    expect(parseText("event: x\n\ndata: y\n\n").events).toEqual([message("y")]);
  });

  test("an incomplete last event is not dispatched", () => {
    expect(parseText("data: a\n").events).toEqual([]);
    expect(parseText("data: a\n\ndata: b").events).toEqual([message("a")]);
  });

  test("comments reach onComment with one leading space removed and dispatch nothing", () => {
    const out = parseText(": hello\n:no space\n:  two\n:\n\n");
    expect(out.comments).toEqual(["hello", "no space", " two", ""]);
    expect(out.events).toEqual([]);
  });

  test("a comment between data lines does not end the event", () => {
    expect(parseText("data: a\n: ping\ndata: b\n\n").events).toEqual([message("a\nb")]);
  });

  test("retry with only ASCII digits reaches onRetry; anything else is ignored", () => {
    expect(parseText("retry: 1500\nretry:0\n").retries).toEqual([1500, 0]);
    expect(parseText("retry: 15a\nretry: -1\nretry: \nretry\nretry: 1.5\nretry:  10\nretry: ١٢\n").retries).toEqual([]);
  });

  test("handlers are optional except onEvent", () => {
    const events: SseEvent[] = [];
    const parser = new SseParser({ onEvent: (event) => events.push(event) });
    parser.feed(": c\nretry: 5\ndata: x\n\n");
    expect(events).toEqual([message("x")]);
  });
});

describe("parse: stream handling", () => {
  test("CR at the end of a chunk and LF at the start of the next are one line end", () => {
    // Read as two line ends, the LF would be a blank line and dispatch "a" on its own.
    expect(parseText("data: a\r", "\ndata: b\r", "\n\r", "\n").events).toEqual([message("a\nb")]);
  });

  test("a lone CR at the end of a chunk still ends the line", () => {
    expect(parseText("data: a\r", "data: b\r", "\r").events).toEqual([message("a\nb")]);
  });

  test("skips one leading BOM, as text or as bytes split anywhere", () => {
    expect(parseText("\uFEFFdata: a\n\n").events).toEqual([message("a")]);
    const bytes = utf8.encode("\uFEFFdata: a\n\n");
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(parseBytes(bytes.subarray(0, cut), bytes.subarray(cut)).events).toEqual([message("a")]);
    }
  });

  test("a second BOM, or one later in the stream, is part of the line", () => {
    expect(parseText("\uFEFF\uFEFFdata: a\n\n").events).toEqual([]);
    expect(parseText("data: a\n\n\uFEFFdata: b\n\n").events).toEqual([message("a")]);
    expect(parseBytes(utf8.encode("\uFEFF\uFEFFdata: a\n\n")).events).toEqual([]);
  });

  test("malformed UTF-8 becomes U+FFFD and does not break lines", () => {
    expect(parseBytes(new Uint8Array([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0x0a, 0x0a])).events).toEqual([message("\uFFFD")]);
  });

  test("reset drops the partial line and event but keeps the last dispatched id", () => {
    const { parser, out } = newCollector();
    parser.feed("id: 1\ndata: a\n\nid: 2\nevent: half\ndata: par");
    parser.reset();
    expect(parser.lastEventId).toBe("1");
    parser.feed("tial\n\ndata: b\n\n");
    expect(out.events).toEqual([message("a", "message", "1"), message("b", "message", "1")]);
  });

  test("reset forgets a pending CR and a half-decoded character, and skips a BOM again", () => {
    const { parser, out } = newCollector();
    parser.feed("data: a\r");
    parser.reset();
    parser.feed("\ndata: b\n\n");
    parser.feedBytes(new Uint8Array([0xe2, 0x82])); // first two bytes of "€"
    parser.reset();
    parser.feedBytes(utf8.encode("\uFEFFdata: c\n\n"));
    expect(out.events).toEqual([message("b"), message("c")]);
  });

  test("a handler that resets stops the rest of the chunk", () => {
    const seen: string[] = [];
    const parser: SseParser = new SseParser({
      onEvent: (event) => {
        seen.push(event.data);
        if (event.data === "stop") parser.reset();
      },
    });
    parser.feed("data: a\n\ndata: stop\n\ndata: dropped\n\n");
    parser.feed("data: next\n\n");
    expect(seen).toEqual(["a", "stop", "next"]);
  });

  describe("chunk boundaries", () => {
    const sample =
      "\uFEFFretry: 3000\r\n" +
      ": hi there\r" +
      'id: 1\nevent: goal\ndata: {"minute":23}\r\n\r\n' +
      "data: line one\rdata:  two\r\ndata\n\n" +
      "id: é😀\r\n: 𝄞 comment\ndata: x:y\r\r" +
      "event: only-type\n\n" +
      "id: 4\0\ndata: tail\r\n\n" +
      "data: unfinished";
    const expected: Parsed = {
      events: [
        message('{"minute":23}', "goal", "1"),
        message("line one\n two\n", "message", "1"),
        message("x:y", "message", "é😀"),
        message("tail", "message", "é😀"),
      ],
      retries: [3000],
      comments: ["hi there", "𝄞 comment"],
    };
    const bytes = utf8.encode(sample);

    test("the sample parses as expected in one piece", () => {
      expect(parseText(sample)).toEqual(expected);
      expect(parseBytes(bytes)).toEqual(expected);
    });

    test("text split in three at every pair of positions", () => {
      for (let i = 0; i <= sample.length; i++) {
        for (let j = i; j <= sample.length; j++) {
          const out = parseText(sample.slice(0, i), sample.slice(i, j), sample.slice(j));
          if (!Bun.deepEquals(out, expected)) expect({ i, j, out }).toEqual({ i, j, out: expected });
        }
      }
    });

    test("bytes split in three at every pair of byte positions", () => {
      for (let i = 0; i <= bytes.length; i++) {
        for (let j = i; j <= bytes.length; j++) {
          const out = parseBytes(bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j));
          if (!Bun.deepEquals(out, expected)) expect({ i, j, out }).toEqual({ i, j, out: expected });
        }
      }
    });

    test("one byte at a time", () => {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
      expect(parseBytes(...chunks)).toEqual(expected);
    });
  });
});

describe("injection", () => {
  test("newlines in id and event never produce extra fields or events", () => {
    const { parser, out } = newCollector();
    parser.feed(encodeMessage({ id: "1\n\ndata: evil", event: "x\rid: 9", data: "ok" }));
    parser.feed(encodeMessage({ id: "2\r\nretry: 1\r\n", event: "\n\nevent: y\ndata: z\n\n", data: "ok2" }));
    expect(out.events).toEqual([message("ok", "xid: 9", "1data: evil"), message("ok2", "event: ydata: z", "2retry: 1")]);
    expect(out.retries).toEqual([]);
    expect(parser.lastEventId).toBe("2retry: 1");
  });

  test("an id with NUL keeps its other characters instead of being dropped by the parser", () => {
    expect(parseText(encodeMessage({ id: "a\0b", data: "x" })).events).toEqual([message("x", "message", "ab")]);
  });

  test("field-looking text in data stays data", () => {
    const data = "a\n\nevent: evil\nid: 3\r\nretry: 1\r: c";
    const out = parseText(encodeMessage({ data }));
    expect(out.events).toEqual([message(data.replace(/\r\n?/g, "\n"))]);
    expect(out.retries).toEqual([]);
    expect(out.comments).toEqual([]);
  });

  test("comment text cannot end the comment and start an event", () => {
    const out = parseText(encodeComment("x\n\ndata: evil\r\n\r\n"));
    expect(out.events).toEqual([]);
    expect(out.comments).toEqual(["x", "", "data: evil", "", ""]);
  });
});

describe(`round trip (seed ${SEED}; set SSE_TEST_SEED to reproduce another)`, () => {
  // Line ends in every form, field-looking text, BOMs, NUL and characters of 1 to 4 UTF-8 bytes
  // (astral ones are surrogate pairs in JS, so chunk splits can fall between their halves).
  const FRAGMENTS = [
    "a",
    "Z",
    "7",
    " ",
    "  ",
    ":",
    ": ",
    "\r",
    "\n",
    "\r\n",
    "\n\r",
    "\0",
    "\t",
    "é",
    "€",
    "😀",
    "𝄞",
    "\uFEFF",
    "data: ",
    "id:",
    "event: x",
    "retry: 5",
    '{"k":"v"}',
  ];
  const MESSAGES = 4000;
  const MAX_FRAGMENTS = 12;
  const MAX_CHUNK = 64;

  function randomString(random: () => number): string {
    let text = "";
    const count = Math.floor(random() * (MAX_FRAGMENTS + 1));
    for (let i = 0; i < count; i++) text += FRAGMENTS[Math.floor(random() * FRAGMENTS.length)] ?? "";
    return text;
  }

  function maybe<T>(random: () => number, probability: number, make: () => T): T | undefined {
    return random() < probability ? make() : undefined;
  }

  /** What a parser must report for a field written by singleLine. */
  const withoutBreaks = (value: string) => value.replace(/[\r\n\0]/g, "");
  /** SSE cannot carry CR in data: every line end comes back as LF. */
  const withLfLineEnds = (value: string) => value.replace(/\r\n?/g, "\n");

  interface Case {
    message: SseMessage;
    comment: string | undefined;
  }

  const random = seededRandom(SEED);
  const cases: Case[] = [];
  for (let i = 0; i < MESSAGES; i++) {
    cases.push({
      message: {
        id: maybe(random, 0.7, () => randomString(random)),
        event: maybe(random, 0.7, () => randomString(random)),
        data: maybe(random, 0.9, () => randomString(random)),
        retry: maybe(random, 0.1, () => Math.floor(random() * 100_000)),
      },
      comment: maybe(random, 0.1, () => randomString(random)),
    });
  }

  let stream = "";
  const expected: Parsed = { events: [], retries: [], comments: [] };
  let lastEventId = "";
  for (const { message: m, comment } of cases) {
    if (comment !== undefined) {
      stream += encodeComment(comment);
      expected.comments.push(...comment.split(/\r\n|\r|\n/));
    }
    stream += encodeMessage(m);
    if (m.id !== undefined) lastEventId = withoutBreaks(m.id);
    if (m.retry !== undefined) expected.retries.push(m.retry);
    if (m.data !== undefined) {
      expected.events.push({ type: withoutBreaks(m.event ?? "") || "message", data: withLfLineEnds(m.data), lastEventId });
    }
  }

  test("each message alone parses back to its data, type and id", () => {
    for (const { message: m } of cases) {
      const got = parseText(encodeMessage(m)).events;
      const want =
        m.data === undefined ? [] : [{ type: withoutBreaks(m.event ?? "") || "message", data: withLfLineEnds(m.data), lastEventId: withoutBreaks(m.id ?? "") }];
      if (!Bun.deepEquals(got, want)) expect({ message: m, got }).toEqual({ message: m, got: want });
    }
  });

  test("data without CR comes back exactly", () => {
    let checked = 0;
    for (const { message: m } of cases) {
      if (m.data === undefined || m.data.includes("\r")) continue;
      checked++;
      const got = parseText(encodeMessage({ data: m.data })).events[0]?.data;
      if (got !== m.data) expect({ data: m.data, got }).toEqual({ data: m.data, got: m.data });
    }
    expect(checked).toBeGreaterThan(MESSAGES / 10);
  });

  test("the whole stream parses back in one piece", () => {
    expect(parseText(stream)).toEqual(expected);
  });

  test("the whole stream parses back from random text chunks", () => {
    const chunkRandom = seededRandom(SEED + 1);
    const chunks: string[] = [];
    for (let pos = 0; pos < stream.length; ) {
      const size = 1 + Math.floor(chunkRandom() * MAX_CHUNK);
      chunks.push(stream.slice(pos, pos + size));
      pos += size;
    }
    expect(parseText(...chunks)).toEqual(expected);
  });

  test("the whole stream parses back from random byte chunks", () => {
    const chunkRandom = seededRandom(SEED + 2);
    const bytes = utf8.encode(stream);
    const chunks: Uint8Array[] = [];
    for (let pos = 0; pos < bytes.length; ) {
      const size = 1 + Math.floor(chunkRandom() * MAX_CHUNK);
      chunks.push(bytes.subarray(pos, pos + size));
      pos += size;
    }
    expect(parseBytes(...chunks)).toEqual(expected);
  });
});
