import { expect, test } from "bun:test";
import { formatCursor, parseCursor } from "../../src/match/cursor.ts";
import { parseEventId, validatePublishInput } from "../../src/match/event.ts";

test("composite ids round-trip and skip garbage", () => {
  const c = new Map([["a", 12], ["b-2", 0], ["C_3", 99]]);
  expect(parseCursor(formatCursor(c), 64)).toEqual(c);
  expect(parseCursor("a:1,??,b:x,c:3", 64)).toEqual(new Map([["a", 1], ["c", 3]]));
  expect(parseCursor("a:1,b:2,c:3", 2).size).toBe(2);
  expect(parseCursor(null, 64).size).toBe(0);
});

test("single ids: only positive safe integers", () => {
  expect(parseEventId("42")).toBe(42);
  for (const bad of ["", "0", "-1", "abc", "1.5", "99999999999999999", " 1", null, undefined]) expect(parseEventId(bad)).toBeUndefined();
});

test("publish validation", () => {
  expect(validatePublishInput({ type: "goal" })).toEqual({ ok: true, value: { type: "goal", data: null } });
  for (const bad of [null, [], "x", { type: "" }, { type: "1goal" }, { type: "snapshot" }, { type: "touchline.x" }, { type: "a", key: "" }, { type: "a", state: [1] }]) {
    expect(validatePublishInput(bad).ok).toBe(false);
  }
});
