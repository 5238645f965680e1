/**
 * What a scenario prints and leaves behind: one figure line, the failures in words (the test's assertion
 * message), and an evidence folder with every client's history, the publisher's failures and the node logs.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Verdict } from "./checker.ts";
import type { Gaps } from "./gaps.ts";
import type { ClientHistory } from "./history.ts";

export interface ScenarioOutcome {
  name: string;
  verdict: Verdict;
  gaps: Gaps;
  /** Publishes never acknowledged although retried with their key until the end. */
  unacked: number;
  /** Reconnects per client (connections after the first). */
  reconnects: number[];
}

const ms = (x: number | null): string => (x === null ? "n/a" : `${x}ms`);

export function figureLine(o: ScenarioOutcome): string {
  const v = o.verdict;
  return (
    `FAULT ${o.name}: acked=${v.acked} clients=${v.clients} missing=${v.missing} dup=${v.duplicates} order=${v.outOfOrder} ` +
    `epoch=${v.epochCrossings} reused=${v.reusedIds.length} gaveUp=${v.gaveUp} unacked=${o.unacked} ` +
    `reconnects=${o.reconnects.reduce((a, b) => a + b, 0)} (max ${Math.max(0, ...o.reconnects)}) ` +
    `longestGap healthy=${ms(o.gaps.healthy)} faulted=${ms(o.gaps.faulted)}`
  );
}

/** The failures in words, empty when the scenario held. */
export function failures(o: ScenarioOutcome): string[] {
  const v = o.verdict;
  const out: string[] = [];
  const clientsWith = (f: (c: Verdict["perClient"][number]) => string[], what: string): void => {
    const hit = v.perClient.filter((c) => f(c).length > 0);
    if (hit.length === 0) return;
    const eg = hit[0]!;
    const ids = f(eg);
    out.push(
      `${what}: ${hit.length} clients, e.g. ${eg.name} (${eg.match}): ${ids.length} ids ${ids.slice(0, 3).join(",")}${ids.length > 3 ? ` … ${ids.at(-1)}` : ""}`,
    );
  };
  clientsWith((c) => c.missing, "missing acknowledged events");
  clientsWith((c) => c.duplicates, "duplicates");
  clientsWith((c) => c.outOfOrder, "out of order");
  clientsWith((c) => c.epochCrossings, "events of another epoch without a snapshot");
  if (v.gaveUp > 0) out.push(`${v.gaveUp} clients gave up (non-200 answer)`);
  if (v.reusedIds.length > 0) out.push(`the log issued ${v.reusedIds.length} ids twice, e.g. ${v.reusedIds.slice(0, 3).join(",")}`);
  if (o.unacked > 0) out.push(`${o.unacked} publishes never acknowledged despite retries with their key`);
  return out;
}

/** A client's story in one object: where it was served, what it got, what it lacks. */
function clientSummary(c: ClientHistory, v: Verdict["perClient"][number] | undefined) {
  const ids = c.deliveries.filter((d) => d.id !== null);
  return {
    name: c.name,
    match: c.match,
    connections: c.connections.map((x) => `${x.node ?? "?"}${x.refused ? " refused" : ""}@${x.openedAt}`),
    drops: c.drops,
    deliveries: c.deliveries.length,
    snapshots: c.deliveries.filter((d) => d.kind === "snapshot").map((d) => `${d.id}@${d.at}`),
    first: ids[0]?.id,
    last: ids.at(-1) ? `${ids.at(-1)!.id}@${ids.at(-1)!.at}` : undefined,
    gaveUp: c.gaveUp,
    missing: v?.missing.length,
    missingFirst: v?.missing.slice(0, 5),
    duplicates: v?.duplicates.slice(0, 5),
    outOfOrder: v?.outOfOrder.slice(0, 5),
    epochCrossings: v?.epochCrossings.slice(0, 5),
  };
}

/** Writes the evidence folder and returns its path. */
export function writeEvidence(
  o: ScenarioOutcome,
  clients: readonly ClientHistory[],
  timeline: Record<string, unknown>,
  nodeLogs: Record<string, string>,
): string {
  const dir = join(tmpdir(), "touchline-faults", `${o.name}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const byName = new Map(o.verdict.perClient.map((v) => [v.name, v]));
  const summary = {
    figure: figureLine(o),
    failures: failures(o),
    timeline,
    gaps: o.gaps.perClient,
    clients: clients.map((c) => clientSummary(c, byName.get(c.name))),
  };
  writeFileSync(join(dir, "summary.json"), JSON.stringify(summary, null, 1));
  writeFileSync(join(dir, "histories.json"), JSON.stringify(clients));
  for (const [node, log] of Object.entries(nodeLogs)) writeFileSync(join(dir, `${node}.log`), log);
  return dir;
}
