/**
 * The exactness check of the fault suite (pure): for every client, every acknowledged id of its match
 * after the client's starting position arrives exactly once and in order; nothing of another log epoch
 * follows without a snapshot in between; no client gave up; and the log never issued one id twice.
 *
 * Positions are per epoch. A client's first snapshot in an epoch is where it starts in that epoch (a
 * snapshot with no id starts it at 0, in the epoch of the next event). Epochs that began after the client
 * joined are owed from the beginning unless a snapshot of that epoch moved the client in. A later snapshot
 * in an epoch the client already follows does not excuse the events it skipped: resume within retention
 * must be exact, so those count as missing.
 */
import { parseId, type AckedIds, type ClientHistory } from "./history.ts";

export interface ClientVerdict {
  name: string;
  match: string;
  /** Acknowledged ids the client should have received and did not. */
  missing: string[];
  /** Ids received more than once. */
  duplicates: string[];
  /** Ids received after a later id of the same epoch. */
  outOfOrder: string[];
  /** Ids of another epoch than the client's position, with no snapshot in between (or before any snapshot). */
  epochCrossings: string[];
  gaveUp: boolean;
}

export interface Verdict {
  acked: number;
  clients: number;
  missing: number;
  duplicates: number;
  outOfOrder: number;
  epochCrossings: number;
  gaveUp: number;
  /** Ids acknowledged for two different publishes of one match: the log reused an id. */
  reusedIds: string[];
  perClient: ClientVerdict[];
  ok: boolean;
}

/** Epochs of a match in the order they first appear among its acknowledgements. */
function epochOrder(acked: readonly string[]): string[] {
  const order: string[] = [];
  for (const id of acked) {
    const { epoch } = parseId(id);
    if (!order.includes(epoch)) order.push(epoch);
  }
  return order;
}

function reused(acked: readonly string[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const id of acked) (seen.has(id) ? twice : seen).add(id);
  return [...twice];
}

export function checkClient(client: ClientHistory, acked: readonly string[]): ClientVerdict {
  const v: ClientVerdict = {
    name: client.name,
    match: client.match,
    missing: [],
    duplicates: [],
    outOfOrder: [],
    epochCrossings: [],
    gaveUp: client.gaveUp !== undefined,
  };
  /** Where the client entered each epoch (its first snapshot there). */
  const start = new Map<string, number>();
  let firstEpoch: string | undefined;
  /** The client's position: epoch (undefined after an id-less snapshot, until an event names it) and last seq. */
  let pos: { epoch: string | undefined; seq: number } | undefined;
  const received = new Set<string>();

  const enter = (epoch: string, seq: number): void => {
    if (!start.has(epoch)) start.set(epoch, seq);
    firstEpoch ??= epoch;
  };

  for (const d of client.deliveries) {
    if (d.kind === "snapshot") {
      if (d.id === null) pos = { epoch: undefined, seq: 0 };
      else {
        const p = parseId(d.id);
        pos = { epoch: p.epoch, seq: p.seq };
        enter(p.epoch, p.seq);
      }
      continue;
    }
    if (d.id === null) continue; // an event without an id cannot be checked (the server never sends one)
    const p = parseId(d.id);
    if (pos && pos.epoch === undefined) {
      pos.epoch = p.epoch;
      enter(p.epoch, 0);
    }
    if (!pos || pos.epoch !== p.epoch) {
      // Glued onto state of another log: not a valid delivery of its epoch either.
      v.epochCrossings.push(d.id);
      continue;
    }
    if (received.has(d.id)) {
      v.duplicates.push(d.id);
      continue;
    }
    received.add(d.id);
    if (p.seq <= pos.seq) v.outOfOrder.push(d.id);
    else pos.seq = p.seq;
  }

  const epochs = epochOrder(acked);
  const from = firstEpoch === undefined ? 0 : Math.max(0, epochs.indexOf(firstEpoch));
  const owed = new Set(epochs.slice(from));
  for (const id of acked) {
    const p = parseId(id);
    if (!owed.has(p.epoch)) continue;
    if (p.seq > (start.get(p.epoch) ?? 0) && !received.has(id)) v.missing.push(id);
  }
  return v;
}

export function check(clients: readonly ClientHistory[], acked: AckedIds): Verdict {
  const perClient = clients.map((c) => checkClient(c, acked.get(c.match) ?? []));
  const sum = (f: (v: ClientVerdict) => number): number => perClient.reduce((n, v) => n + f(v), 0);
  const reusedIds = [...acked.values()].flatMap(reused);
  const v: Verdict = {
    acked: [...acked.values()].reduce((n, ids) => n + ids.length, 0),
    clients: clients.length,
    missing: sum((c) => c.missing.length),
    duplicates: sum((c) => c.duplicates.length),
    outOfOrder: sum((c) => c.outOfOrder.length),
    epochCrossings: sum((c) => c.epochCrossings.length),
    gaveUp: sum((c) => (c.gaveUp ? 1 : 0)),
    reusedIds,
    perClient,
    ok: false,
  };
  v.ok = v.missing + v.duplicates + v.outOfOrder + v.epochCrossings + v.gaveUp + reusedIds.length === 0;
  return v;
}
