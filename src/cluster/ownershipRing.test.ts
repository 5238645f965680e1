import { describe, expect, test } from "bun:test";
import { OwnershipRing } from "./ownershipRing.ts";
import { SHARD_COUNT, shardOf } from "./shards.ts";
import { seededRandom as prng } from "../../test/helpers/seededRandom.ts";

const randomId = (rnd: () => number, prefix: string) => `${prefix}-${Math.floor(rnd() * 1e9).toString(36)}`;

describe("OwnershipRing", () => {
  test("empty ring owns nothing; one node owns everything", () => {
    expect(new OwnershipRing([]).ownerOf("m")).toBeUndefined();
    expect(new OwnershipRing(["a"]).ownerOf("m")).toBe("a");
  });

  test("every view of the same members agrees, whatever the order", () => {
    const a = new OwnershipRing(["n1", "n2", "n3"]);
    const b = new OwnershipRing(["n3", "n1", "n2", "n1"]);
    for (let i = 0; i < 500; i++) expect(a.ownerOf(`m${i}`)).toBe(b.ownerOf(`m${i}`)!);
  });

  test("balance: with 3 nodes and 1,000 matches no node owns more than 40% (200 random memberships)", () => {
    const rnd = prng(42);
    for (let trial = 0; trial < 200; trial++) {
      const nodes = [randomId(rnd, "node"), randomId(rnd, "node"), randomId(rnd, "node")];
      const matches = Array.from({ length: 1000 }, () => randomId(rnd, "match"));
      const shares = new OwnershipRing(nodes).shares(matches);
      for (const [, n] of shares) expect(n).toBeLessThanOrEqual(400);
    }
  });

  test("stability: a fourth node joining moves at most about a third of the matches, all to the new node", () => {
    const rnd = prng(7);
    for (let trial = 0; trial < 200; trial++) {
      const nodes = [randomId(rnd, "node"), randomId(rnd, "node"), randomId(rnd, "node")];
      const joiner = randomId(rnd, "node");
      const matches = Array.from({ length: 1000 }, () => randomId(rnd, "match"));
      const before = new OwnershipRing(nodes);
      const after = new OwnershipRing([...nodes, joiner]);
      let moved = 0;
      for (const m of matches) {
        const o1 = before.ownerOf(m);
        const o2 = after.ownerOf(m);
        if (o1 !== o2) {
          moved++;
          expect(o2).toBe(joiner);
        }
      }
      // The ideal is 1/4; "about a third" leaves room for chance over 1,000 matches.
      expect(moved).toBeLessThanOrEqual(333);
      expect(moved).toBeGreaterThan(150);
    }
  });

  test("a node leaving moves only its own matches", () => {
    const rnd = prng(9);
    const nodes = ["a", "b", "c", "d"];
    const full = new OwnershipRing(nodes);
    const without = new OwnershipRing(["a", "b", "d"]);
    for (let i = 0; i < 2000; i++) {
      const m = randomId(rnd, "m");
      if (full.ownerOf(m) !== "c") expect(without.ownerOf(m)).toBe(full.ownerOf(m)!);
    }
  });

  test("shardsMovedFrom: every shard from an empty ring, none between equal rings, a joiner's shards alone when it joins or leaves", () => {
    const empty = new OwnershipRing([]);
    const three = new OwnershipRing(["a", "b", "c"]);
    expect(three.shardsMovedFrom(empty).size).toBe(SHARD_COUNT);
    expect(empty.shardsMovedFrom(three).size).toBe(SHARD_COUNT);
    expect(new OwnershipRing(["c", "a", "b"]).shardsMovedFrom(three).size).toBe(0);

    const four = new OwnershipRing(["a", "b", "c", "d"]);
    const joined = four.shardsMovedFrom(three);
    const leaving = three.shardsMovedFrom(four);
    expect([...leaving].sort()).toEqual([...joined].sort());
    for (let shard = 0; shard < SHARD_COUNT; shard++) {
      expect(joined.has(shard)).toBe(four.ownerOfShard(shard) === "d");
      if (!joined.has(shard)) expect(four.ownerOfShard(shard)).toBe(three.ownerOfShard(shard)!);
    }
    // About a quarter of the shards, not all of them.
    expect(joined.size).toBeGreaterThan(SHARD_COUNT / 5);
    expect(joined.size).toBeLessThan(SHARD_COUNT / 3);
  });

  test("ownerOfShard agrees with ownerOf for a match of that shard", () => {
    const ring = new OwnershipRing(["a", "b", "c"]);
    for (let i = 0; i < 200; i++) expect(ring.ownerOfShard(shardOf(`m${i}`))).toBe(ring.ownerOf(`m${i}`)!);
  });
});
