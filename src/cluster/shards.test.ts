import { describe, expect, test } from "bun:test";
import { SHARD_COUNT, fnvPrefix, hash32, hash32After, shardKey, shardOf, shardOfKey } from "./shards.ts";

describe("shards", () => {
  test("every match falls in a shard in range, the same one every time", () => {
    for (let i = 0; i < 5000; i++) {
      const s = shardOf(`m${i}`);
      expect(Number.isInteger(s) && s >= 0 && s < SHARD_COUNT).toBe(true);
      expect(shardOf(`m${i}`)).toBe(s);
    }
  });

  test("matches spread over the shards: 40,960 ids leave no shard empty and none above 3x the mean", () => {
    const counts = new Array<number>(SHARD_COUNT).fill(0);
    for (let i = 0; i < SHARD_COUNT * 10; i++) counts[shardOf(`match-${i}`)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBeLessThan(30);
  });

  test("a lease key names its shard; other keys name none", () => {
    for (const s of [0, 1, 4095, 1234]) expect(shardOfKey(shardKey(s))).toBe(s);
    for (const k of ["m1", "shard-", "shard-4096", "shard--1", "shard-1.5", "shard-x"]) expect(shardOfKey(k)).toBeUndefined();
  });

  test("hashing a prefix once then the rest gives the hash of the whole string", () => {
    for (const [a, b] of [
      ["node-1\u0000", "shard-7"],
      ["", "abc"],
      ["x", ""],
    ] as const)
      expect(hash32After(fnvPrefix(a), b)).toBe(hash32(a + b));
  });
});
