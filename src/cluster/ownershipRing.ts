/**
 * OwnershipRing: which node owns which match. Pure.
 *
 * A match is owned with its shard (shards.ts). Rendezvous (highest-random-weight) hashing rather than a
 * ring of virtual nodes: every node scores each shard and the highest score owns it. It needs no tuning
 * of virtual-node counts to balance, and when a node joins it takes over exactly the shards it now
 * scores highest on (about 1/(n+1) of them) while no shard moves between the nodes that stay, which is
 * the least movement possible. The owner of every shard is worked out once, when the ring is built
 * (a ring is rebuilt when membership changes), so a lookup is one hash of the match id.
 */

import { SHARD_COUNT, fnvPrefix, hash32After, shardKey, shardOf } from "./shards.ts";

export class OwnershipRing {
  readonly nodes: readonly string[];

  /** The owner of each shard (empty when the ring is). */
  private readonly shardOwners: string[];

  constructor(nodes: Iterable<string>) {
    this.nodes = [...new Set(nodes)].sort();
    const prefixes = this.nodes.map((node) => fnvPrefix(`${node}\u0000`));
    this.shardOwners = this.nodes.length === 0 ? [] : Array.from({ length: SHARD_COUNT }, (_, shard) => this.score(shard, prefixes));
  }

  /** The owner of a match (its shard's), or undefined when the ring is empty. */
  ownerOf(match: string): string | undefined {
    return this.shardOwners[shardOf(match)];
  }

  /** The owner of a shard, or undefined when the ring is empty. */
  ownerOfShard(shard: number): string | undefined {
    return this.shardOwners[shard];
  }

  /**
   * The shards whose owner differs between `previous` and this ring. With rendezvous hashing a node
   * joining or leaving moves only its own shards, so a ring change touches those matches alone.
   */
  shardsMovedFrom(previous: OwnershipRing): Set<number> {
    const moved = new Set<number>();
    for (let shard = 0; shard < SHARD_COUNT; shard++) if (this.shardOwners[shard] !== previous.shardOwners[shard]) moved.add(shard);
    return moved;
  }

  /** The node scoring highest on a shard. Ties (vanishingly rare) go to the lower id. */
  private score(shard: number, prefixes: number[]): string {
    let best = this.nodes[0]!;
    let bestScore = -1;
    const key = shardKey(shard);
    for (const [i, node] of this.nodes.entries()) {
      // hash32(`${node}\u0000${key}`), the node's part hashed once per ring.
      const score = hash32After(prefixes[i]!, key);
      if (score > bestScore) {
        best = node;
        bestScore = score;
      }
    }
    return best;
  }

  /** Matches per node among `matches` (the balance tests measure the ring with it). */
  shares(matches: Iterable<string>): Map<string, number> {
    const counts = new Map<string, number>(this.nodes.map((n) => [n, 0]));
    for (const m of matches) {
      const o = this.ownerOf(m);
      if (o !== undefined) counts.set(o, (counts.get(o) ?? 0) + 1);
    }
    return counts;
  }
}
