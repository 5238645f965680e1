import { expect, test } from "bun:test";
import { applyStatePatch, mergePatch, type Json } from "./mergePatch.ts";

// The examples of RFC 7386, appendix A.
const cases: [Json, Json, Json][] = [
  [{ a: "b" }, { a: "c" }, { a: "c" }],
  [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
  [{ a: "b" }, { a: null }, {}],
  [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
  [{ a: ["b"] }, { a: "c" }, { a: "c" }],
  [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
  [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
  [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
  [
    ["a", "b"],
    ["c", "d"],
    ["c", "d"],
  ],
  [{ a: "b" }, ["c"], ["c"]],
  [{ a: "foo" }, null, null],
  [{ a: "foo" }, "bar", "bar"],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: "b", c: null }, { a: "b" }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

test("RFC 7386 appendix A", () => {
  for (const [target, patch, result] of cases) expect(mergePatch(target, patch)).toEqual(result);
});

test("does not mutate its inputs", () => {
  const target = { a: { b: 1 } };
  const patch = { a: { c: 2 } };
  mergePatch(target, patch);
  expect(target).toEqual({ a: { b: 1 } });
  expect(patch).toEqual({ a: { c: 2 } });
});

test("a match state stays an object", () => {
  expect(applyStatePatch({ a: 1 }, undefined)).toEqual({ a: 1 });
  expect(applyStatePatch({ homeScore: 0 }, { homeScore: 1, minute: 23 })).toEqual({ homeScore: 1, minute: 23 });
});

test("a __proto__ key is stored as data, never as a prototype", () => {
  const out = mergePatch({}, JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
  expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
  expect(Object.keys(out)).toEqual(["__proto__"]);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});
