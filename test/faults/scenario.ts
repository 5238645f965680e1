/**
 * One fault scenario from start to verdict. The same traffic every time: a busy match at 20 publishes/s
 * and three quiet ones at 1/s, 30 stock EventSource clients over the four matches, all through the
 * balancer. Timeline: clients join (each starts at its snapshot), publishing runs a few seconds, the
 * fault is injected and healed, publishing goes on ~10 s, then the publisher stops (every started publish
 * retried until acknowledged), the clients get a bounded time to receive everything, and the checks run.
 */
import { check } from "./checker.ts";
import { gaps } from "./gaps.ts";
import type { AckedIds } from "./history.ts";
import { startFaultCluster, type FaultCluster } from "./harness.ts";
import { PLAY, Publisher } from "./publisher.ts";
import { RecordingClient } from "./recordingClient.ts";
import { failures, figureLine, writeEvidence, type ScenarioOutcome } from "./report.ts";

export interface FaultContext {
  cluster: FaultCluster;
  busy: string;
  publisher: Publisher;
  clients: RecordingClient[];
  /** Resolves once every client holds every acknowledged id (false if `timeoutMs` ran out first). */
  allDelivered(timeoutMs: number): Promise<boolean>;
}

/** Injects the fault, waits it out, heals it; returns the ids of the nodes it hit. */
export type Inject = (ctx: FaultContext) => Promise<string[]>;

export interface ScenarioResult extends ScenarioOutcome {
  failures: string[];
  evidence: string;
  busy: string;
  acked: AckedIds;
}

const BUSY_CLIENTS = 15;
const QUIET_CLIENTS = 5;
const QUIET_MATCHES = 3;
const WARM_MS = 3000;
const AFTER_FAULT_MS = 10_000;
const SETTLE_PUBLISHES_MS = 30_000;
const DELIVERY_MS = 30_000;

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await Bun.sleep(100);
  }
  return true;
}

export async function runScenario(name: string, inject: Inject): Promise<ScenarioResult> {
  const cluster = await startFaultCluster();
  const tag = Math.random().toString(36).slice(2, 6);
  const busy = `${name}-busy-${tag}`;
  const quiet = Array.from({ length: QUIET_MATCHES }, (_, i) => `${name}-q${i + 1}-${tag}`);
  const publisher = new Publisher(
    () => cluster.nodes.map((n) => n.fixture.url),
    [{ match: busy, perSecond: 20 }, ...quiet.map((match) => ({ match, perSecond: 1 }))],
  );
  const clients: RecordingClient[] = [];
  const histories = () => clients.map((c) => c.history);
  const allDelivered = (timeoutMs: number) => until(() => check(histories(), publisher.acked).missing === 0, timeoutMs);
  const timeline: Record<string, unknown> = {};
  try {
    publisher.start();
    // Every match has an event before clients join, so each starts at a snapshot with an id.
    if (!(await until(() => [...publisher.acked.values()].every((ids) => ids.length > 0), 10_000))) throw new Error("no first publish acknowledged");
    const ownerBefore = (await cluster.ownerOf(busy)).id;
    for (let i = 0; i < BUSY_CLIENTS; i++) clients.push(new RecordingClient(`busy${i}`, cluster.entryUrl, busy, [PLAY]));
    for (const [m, match] of quiet.entries()) {
      for (let i = 0; i < QUIET_CLIENTS; i++) clients.push(new RecordingClient(`q${m + 1}.${i}`, cluster.entryUrl, match, [PLAY]));
    }
    if (!(await until(() => clients.every((c) => c.history.deliveries.length > 0), 10_000))) throw new Error("clients got no snapshot");

    const from = Date.now();
    await Bun.sleep(WARM_MS);
    const faultAt = Date.now();
    const faulted = await inject({ cluster, busy, publisher, clients, allDelivered });
    const healedAt = Date.now();
    await Bun.sleep(AFTER_FAULT_MS);
    const to = Date.now();
    const unacked = await publisher.stop(SETTLE_PUBLISHES_MS);
    await allDelivered(DELIVERY_MS);
    for (const c of clients) c.close();

    Object.assign(timeline, { from, faultAt, healedAt, to, ownerBefore, faulted, publishFailures: Object.fromEntries(publisher.failures) });
    timeline.ownerAfter = await cluster.ownerOf(busy).then(
      (n) => n.id,
      (e: Error) => e.message,
    );
    const busyClients = histories().filter((h) => h.match === busy);
    const outcome: ScenarioOutcome = {
      name,
      verdict: check(histories(), publisher.acked),
      gaps: gaps(busyClients, { from, to, faultAt, faultedNodes: new Set(faulted) }),
      unacked,
      reconnects: clients.map((c) => Math.max(0, c.history.connections.length - 1)),
    };
    const logs = { ...Object.fromEntries(cluster.nodes.map((n) => [n.id, n.fixture.output()])), "nats-server": cluster.nats.output() };
    const evidence = writeEvidence(outcome, histories(), timeline, logs);
    console.log(figureLine(outcome));
    console.log(
      `  owner ${ownerBefore} -> ${String(timeline.ownerAfter)}, faulted [${faulted.join(",")}], publish failures ${JSON.stringify(timeline.publishFailures)}, evidence ${evidence}`,
    );
    return { ...outcome, failures: failures(outcome), evidence, busy, acked: publisher.acked };
  } finally {
    for (const c of clients) c.close();
    await publisher.stop(0);
    await cluster.stop();
  }
}
