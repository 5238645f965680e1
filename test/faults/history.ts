/**
 * What the fault suite records: each client's deliveries and connections, and the ids the publisher got
 * acknowledged. Plain data, so the checks over it (checker.ts, gaps.ts) are pure functions that can be
 * unit-tested on hand-made histories.
 */

/** Something a client received that carries (or could carry) an id: a published event or a snapshot. */
export interface Delivery {
  kind: "event" | "snapshot";
  /** The SSE id; null for a snapshot of a match with no events. */
  id: string | null;
  type: string;
  /** Date.now() when the client's EventSource dispatched it. */
  at: number;
}

/** One HTTP connection of a client's EventSource (the first, then one per reconnect). */
export interface Connection {
  openedAt: number;
  /** The node that served it, from the stream's `touchline.hello`; undefined until it arrives. */
  node: string | undefined;
  /** The node answered `touchline.refused` (not ready, at capacity, draining): come back later. */
  refused?: boolean;
}

export interface ClientHistory {
  name: string;
  match: string;
  deliveries: Delivery[];
  connections: Connection[];
  /** Streams that ended or attempts that failed, each followed by the EventSource's own retry. */
  drops: number;
  /** Set when the EventSource stopped for good (a non-200 answer, a wrong content type, a 204). */
  gaveUp: { at: number; reason: string } | undefined;
}

/** Acknowledged ids per match, in the order the acknowledgements arrived. */
export type AckedIds = ReadonlyMap<string, readonly string[]>;

/**
 * Event ids are opaque to clients; the suite reads them only as much as the contract allows: they increase
 * within a log (compare the leading integer), are equal only when the whole string is, and name the log's
 * epoch after an `@` (no tag: the current log, as ids were before epochs were added).
 */
export interface ParsedId {
  seq: number;
  epoch: string;
}

export function parseId(id: string): ParsedId {
  const at = id.indexOf("@");
  return { seq: Number.parseInt(id, 10), epoch: at < 0 ? "" : id.slice(at + 1) };
}
