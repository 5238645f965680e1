import { describe, expect, test } from "bun:test";
import { jsonDeeperThan } from "./jsonDepth.ts";

/** An array nested `levels` deep (0: a scalar). */
const nested = (levels: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
};

describe("jsonDeeperThan", () => {
  test("a scalar is depth 0; arrays and objects count alike, at exactly the limit and one past it", () => {
    expect(jsonDeeperThan("text", 0)).toBe(false);
    expect(jsonDeeperThan(null, 0)).toBe(false);
    expect(jsonDeeperThan([], 0)).toBe(true);
    expect(jsonDeeperThan(nested(5), 5)).toBe(false);
    expect(jsonDeeperThan(nested(6), 5)).toBe(true);
    expect(jsonDeeperThan({ a: { b: [{ c: 1 }] } }, 4)).toBe(false);
    expect(jsonDeeperThan({ a: { b: [{ c: [1] }] } }, 4)).toBe(true);
  });

  test("siblings do not add up: depth is the deepest path, found wherever it is", () => {
    // object > list > item > tags: 4 levels, however many items.
    const siblings = { list: Array.from({ length: 200 }, (_, i) => ({ i, tags: [i] })) };
    expect(jsonDeeperThan(siblings, 4)).toBe(false);
    expect(jsonDeeperThan(siblings, 3)).toBe(true);
    const deepLast = { list: [...Array.from({ length: 50 }, () => 1), nested(10)] };
    // object > list > ten arrays: 12 levels.
    expect(jsonDeeperThan(deepLast, 12)).toBe(false);
    expect(jsonDeeperThan(deepLast, 11)).toBe(true);
  });

  test("a value far deeper than the stack allows is judged without overflowing it", () => {
    const deep = JSON.parse(`${"[".repeat(5000)}1${"]".repeat(5000)}`);
    expect(jsonDeeperThan(deep, 64)).toBe(true);
    expect(jsonDeeperThan(nested(200_000), 64)).toBe(true);
  });
});
