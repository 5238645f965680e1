/**
 * OwnershipRing: which node owns which match. Pure.
 *
 * Rendezvous (highest-random-weight) hashing rather than a ring of virtual nodes: every node scores each
 * match and the highest score owns it. It needs no tuning of virtual-node counts to balance, and when a
 * node joins it takes over exactly the matches it now scores highest on (about 1/(n+1) of them) while no
 * match moves between the nodes that stay, which is the least movement possible. A lookup costs O(nodes)
 * (clusters have tens of nodes) and is not cached: a ring is rebuilt when membership changes.
 */

/** FNV-1a over UTF-16 code units with a murmur3 finaliser, so nearby strings spread evenly. */
function hash32(text: string): number {
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

export class OwnershipRing {
  readonly nodes: readonly string[];

  constructor(nodes: Iterable<string>) {
    this.nodes = [...new Set(nodes)].sort();
  }

  /** The owner of a match, or undefined when the ring is empty. Ties (vanishingly rare) go to the lower id. */
  ownerOf(match: string): string | undefined {
    let best: string | undefined;
    let bestScore = -1;
    for (const node of this.nodes) {
      const score = hash32(`${node}\u0000${match}`);
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
