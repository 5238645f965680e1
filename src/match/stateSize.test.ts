import { expect, test } from "bun:test";
import { applyStatePatch, type Json } from "./mergePatch.ts";
import { jsonBytes, patchWithin } from "./stateSize.ts";

test("a patch within the limit is applied and the bound grows by at most the patch's bytes", () => {
  const start = { state: { score: [0, 0] }, bytesAtMost: undefined };
  const next = patchWithin(start, { score: [1, 0], minute: 12 }, 1000);
  expect(next?.state).toEqual({ score: [1, 0], minute: 12 });
  expect(next!.bytesAtMost!).toBeGreaterThanOrEqual(jsonBytes(next!.state));
  expect(next!.bytesAtMost).toBe(jsonBytes({ score: [0, 0] }) + jsonBytes({ score: [1, 0], minute: 12 }));
});

test("no patch: the state and its bound as they were", () => {
  const start = { state: { a: 1 }, bytesAtMost: 40 };
  expect(patchWithin(start, undefined, 10)).toBe(start);
});

test("a patch that would pass the limit is refused; one that only the bound passes is measured and applied", () => {
  const big = { text: "x".repeat(900) };
  // Replacing a value with one of the same size: the bound (state + patch) passes 1,000, the state does not.
  const start = { state: big, bytesAtMost: jsonBytes(big) };
  const replaced = patchWithin(start, { text: "y".repeat(900) }, 1000);
  expect(replaced?.state).toEqual({ text: "y".repeat(900) });
  expect(replaced?.bytesAtMost).toBe(jsonBytes({ text: "y".repeat(900) }));
  // Adding as much again would make it about 1,800 bytes: refused, the state unchanged.
  expect(patchWithin(start, { more: "z".repeat(900) }, 1000)).toBeUndefined();
  // Deleting a key makes room.
  expect(patchWithin(start, { text: null, small: 1 }, 1000)?.state).toEqual({ small: 1 });
});

test("the bound never falls below the state's real size, over a long run of random patches", () => {
  let current = { state: {} as Record<string, Json>, bytesAtMost: undefined as number | undefined };
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 2000; i++) {
    const key = `k${random(20)}`;
    const value: Json = random(5) === 0 ? null : random(2) === 0 ? "é".repeat(random(50)) : { nested: { [key]: random(1000) } };
    const next = patchWithin(current, { [key]: value }, 4000);
    if (next === undefined) {
      expect(jsonBytes(applyStatePatch(current.state, { [key]: value }))).toBeGreaterThan(4000);
      continue;
    }
    current = next;
    expect(jsonBytes(current.state)).toBeLessThanOrEqual(current.bytesAtMost!);
    expect(jsonBytes(current.state)).toBeLessThanOrEqual(4000);
  }
});

test("a state already past the limit may shrink by steps, never grow", () => {
  const start = { state: { a: "x".repeat(600), b: "x".repeat(600) }, bytesAtMost: undefined };
  // 1,200 bytes against a limit of 1,000 (lowered since): removing a little is applied...
  const smaller = patchWithin(start, { a: "x".repeat(500) }, 1000);
  expect(smaller?.state).toEqual({ a: "x".repeat(500), b: "x".repeat(600) });
  // ...adding is not, even a byte.
  expect(patchWithin(smaller!, { c: 1 }, 1000)).toBeUndefined();
});
