/**
 * Shards: the unit of ownership. Every match belongs to one of SHARD_COUNT shards (a hash of its id);
 * the ring assigns shards to nodes and a node holds one lease per shard it owns, so its leases, lease
 * round trips and lease-table entries are bounded by the shard count however many matches it owns
 * (the seed's Kafka analogy: a partition per key range, not per key). Pure.
 */

/**
 * Shards in the cluster. Enough that shards spread evenly over tens of nodes (the ring's balance
 * tests hold with it), few enough that a node starting thousands of matches takes a lease per shard
 * once: 20,000 matches fall in about 4,000 shards, the next 20,000 in the same ones.
 */
export const SHARD_COUNT = 4096;

/** FNV-1a over UTF-16 code units with a murmur3 finaliser, so nearby strings spread evenly. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function shardOf(match: string): number {
  return hash32(match) % SHARD_COUNT;
}

/** The shard's lease key in the owners bucket. */
export function shardKey(shard: number): string {
  return `shard-${shard}`;
}

/** The shard a lease key names, or undefined for a key that is not a shard's. */
export function shardOfKey(key: string): number | undefined {
  if (!key.startsWith("shard-")) return undefined;
  const n = Number(key.slice(6));
  return Number.isInteger(n) && n >= 0 && n < SHARD_COUNT ? n : undefined;
}
