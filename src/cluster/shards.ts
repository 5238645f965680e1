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

const FNV_OFFSET = 0x811c9dc5;

/** FNV-1a over UTF-16 code units with a murmur3 finaliser, so nearby strings spread evenly. */
export function hash32(text: string): number {
  return finish(fnv(FNV_OFFSET, text));
}

/** hash32(prefix + text), given fnvPrefix(prefix): a ring scores 4,096 shards per node without building their strings. */
export function hash32After(prefixState: number, text: string): number {
  return finish(fnv(prefixState, text));
}

export function fnvPrefix(prefix: string): number {
  return fnv(FNV_OFFSET, prefix);
}

function fnv(state: number, text: string): number {
  let h = state;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

function finish(state: number): number {
  let h = state;
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
  const m = /^shard-(0|[1-9]\d{0,5})$/.exec(key);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n < SHARD_COUNT ? n : undefined;
}
