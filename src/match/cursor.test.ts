import { expect, test } from "bun:test";
import { formatCursor, parseCursor } from "./cursor.ts";
import { formatEventId, parseEventId, validatePublishInput } from "./event.ts";

test("composite ids round-trip and skip garbage", () => {
  const c = new Map([
    ["a", 12],
    ["b-2", 0],
    ["C_3", 99],
  ]);
  expect(parseCursor(formatCursor(c), 64)).toEqual(c);
  expect(parseCursor("a:1,??,b:x,c:3", 64)).toEqual(
    new Map([
      ["a", 1],
      ["c", 3],
    ]),
  );
  expect(parseCursor("a:1,b:2,c:3", 2).size).toBe(2);
  expect(parseCursor(null, 64).size).toBe(0);
});

test("single ids: only positive safe integers", () => {
  expect(parseEventId("42")).toBe(42);
  for (const bad of ["", "0", "-1", "abc", "1.5", "99999999999999999", " 1", null, undefined]) expect(parseEventId(bad)).toBeUndefined();
});

test("tagged single ids (<seq>@<tag>): the current log's tag, another tag (unknown), no tag (the current log's)", () => {
  expect(formatEventId(42, "k1")).toBe("42@k1");
  expect(parseEventId("42@k1", "k1")).toBe(42);
  expect(parseEventId(formatEventId(7, "mx9h3c"), "mx9h3c")).toBe(7);
  // Another incarnation of the log issued it: unknown (a snapshot), never resumed against this one.
  expect(parseEventId("42@k2", "k1")).toBeUndefined();
  // Issued before ids carried a tag: taken as the current log's.
  expect(parseEventId("42", "k1")).toBe(42);
  for (const bad of ["42@", "@k1", "42@K1", "42@k-1", "42@k1@k1", "0@k1", "-1@k1", "1.5@k1", `42@${"a".repeat(17)}`, "42 @k1"]) {
    expect(parseEventId(bad, "k1")).toBeUndefined();
  }
});

test("tagged composite ids (a:1,b:2@<tag>): round-trip, another tag (empty), no tag (the current log's)", () => {
  const c = new Map([
    ["a", 120],
    ["b", 97],
    ["e", 0],
  ]);
  expect(formatCursor(c, "k1")).toBe("a:120,b:97,e:0@k1");
  expect(parseCursor(formatCursor(c, "k1"), 64, "k1")).toEqual(c);
  // Another incarnation of the log issued it: every match gets a snapshot.
  expect(parseCursor("a:120,b:97@k2", 64, "k1").size).toBe(0);
  // Issued before ids carried a tag: taken as the current log's.
  expect(parseCursor("a:120,b:97", 64, "k1")).toEqual(
    new Map([
      ["a", 120],
      ["b", 97],
    ]),
  );
  // Garbage parts are still skipped under a tag, and the limit still holds.
  expect(parseCursor("a:1,??,b:x,c:3@k1", 64, "k1")).toEqual(
    new Map([
      ["a", 1],
      ["c", 3],
    ]),
  );
  expect(parseCursor("a:1,b:2,c:3@k1", 2, "k1").size).toBe(2);
});

test("publish validation", () => {
  expect(validatePublishInput({ type: "goal" })).toEqual({ ok: true, value: { type: "goal", data: null } });
  for (const bad of [
    null,
    [],
    "x",
    { type: "" },
    { type: "1goal" },
    { type: "snapshot" },
    { type: "touchline.x" },
    { type: "a", key: "" },
    { type: "a", state: [1] },
  ]) {
    expect(validatePublishInput(bad).ok).toBe(false);
  }
});
