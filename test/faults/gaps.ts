/**
 * How long clients waited (pure): per client, the longest time between consecutive deliveries while the
 * publisher ran, split by whether the client's connection at the moment of the fault was on a faulted node.
 * A wait that began in the window counts in full even if it ended after (events owed and delivered late
 * are waited for); a wait with no later delivery at all ends at the window's end.
 */
import type { ClientHistory } from "./history.ts";

export interface GapWindow {
  from: number;
  to: number;
  faultAt: number;
  faultedNodes: ReadonlySet<string>;
}

export interface Gaps {
  /** Longest gap over clients on healthy nodes; null when there were none. */
  healthy: number | null;
  faulted: number | null;
  perClient: { name: string; node: string | undefined; faulted: boolean; longestMs: number }[];
}

/** The node serving the client when the fault began (or its first connection after it, if it was between). */
export function nodeAt(client: ClientHistory, at: number): string | undefined {
  const before = client.connections.filter((c) => c.openedAt <= at).length;
  return client.connections[Math.max(0, before - 1)]?.node;
}

export function longestGap(client: ClientHistory, from: number, to: number): number {
  const times = client.deliveries.map((d) => d.at);
  // Nothing received before the window: the wait runs from the window's start.
  if (times.length === 0 || times[0]! > from) times.unshift(from);
  let longest = 0;
  for (let i = 0; i < times.length; i++) {
    const a = times[i]!;
    const b = times[i + 1] ?? to;
    if (b <= from || a >= to) continue;
    longest = Math.max(longest, b - Math.max(a, from));
  }
  return longest;
}

export function gaps(clients: readonly ClientHistory[], w: GapWindow): Gaps {
  const perClient = clients.map((c) => {
    const node = nodeAt(c, w.faultAt);
    return { name: c.name, node, faulted: node !== undefined && w.faultedNodes.has(node), longestMs: longestGap(c, w.from, w.to) };
  });
  const max = (faulted: boolean): number | null => {
    const xs = perClient.filter((p) => p.faulted === faulted).map((p) => p.longestMs);
    return xs.length ? Math.max(...xs) : null;
  };
  return { healthy: max(false), faulted: max(true), perClient };
}
