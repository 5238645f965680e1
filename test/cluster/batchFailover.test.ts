/**
 * Batched publishing while a node dies: producers send `POST /events` batches over several matches
 * (some owned by the victim) through the survivors, retrying a batch that is not confirmed with the
 * same keys, while the victim is killed with SIGKILL. Every acknowledged id (from 201 answers, and from
 * the `results` of a 503 that stopped part-way) reaches every client of its match exactly once, in order.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, waitFor, waitForClusterSize, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { ResumingClient, orderProblems } from "../helpers/resumingClient.ts";
import { bySeq } from "../helpers/eventIds.ts";

setDefaultTimeout(120_000);

const MATCHES = 6;
const BATCH_ITEMS = 20;
const CLIENTS_PER_MATCH = 5;
const run = Date.now().toString(36);

let nats: NatsFixture;
let nodes: NodeFixture[] = [];

beforeAll(async () => {
  nats = await startNats();
  nodes = await Promise.all([0, 1, 2].map((i) => startNode({ natsUrl: nats.url, nodeId: `bf${i}-${run}` })));
  await waitForClusterSize(nodes, 3);
});

afterAll(async () => {
  await Promise.all(nodes.filter((n) => n.proc.exitCode === null).map((n) => n.kill()));
  await nats?.stop();
});

async function ownerOf(node: NodeFixture, match: string): Promise<string> {
  return ((await (await fetch(`${node.url}/cluster/owner/${match}`)).json()) as { owner: string }).owner;
}

test("SIGKILL of a node during batched publishing: every acknowledged event reaches every client exactly once", async () => {
  const victim = nodes[0]!;
  const survivors = nodes.slice(1);
  // Half the matches owned by the victim, half by the others.
  const matches: string[] = [];
  for (let i = 0; matches.length < MATCHES; i++) {
    const m = `bf-${run}-${i}`;
    const onVictim = (await ownerOf(victim, m)) === victim.nodeId;
    if (onVictim === matches.filter((x) => x.startsWith("v:")).length < MATCHES / 2) matches.push(onVictim ? `v:${m}` : `o:${m}`);
  }
  const ids = matches.map((m) => m.slice(2));
  const urls = () => nodes.filter((n) => n.proc.exitCode === null).map((n) => n.url);
  const clients = new Map(ids.map((m) => [m, Array.from({ length: CLIENTS_PER_MATCH }, (_, i) => new ResumingClient(`/matches/${m}/events`, urls, i))]));
  await waitFor(async () => [...clients.values()].flat().every((c) => c.snapshots > 0), 20_000, "snapshots");

  const acked = new Map<string, Set<string>>(ids.map((m) => [m, new Set()]));
  let batches = 0;
  let retried = 0;
  let publishing = true;
  const producer = (async () => {
    for (let b = 0; publishing; b++) {
      const items = Array.from({ length: BATCH_ITEMS }, (_, i) => {
        const match = ids[(b + i) % ids.length]!;
        return { match, type: "goal", data: { b, i }, key: `b${b}-${i}` };
      });
      for (let attempt = 0; ; attempt++) {
        const url = survivors[(b + attempt) % survivors.length]!.url;
        const res = await fetch(`${url}/events`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(items) }).catch(
          () => undefined,
        );
        const body = (await res?.json().catch(() => undefined)) as { results?: { id: string }[] } | undefined;
        for (const [i, r] of (body?.results ?? []).entries()) acked.get(items[i]!.match)!.add(r.id);
        if (res?.status === 201) break;
        retried++;
        await Bun.sleep(100);
      }
      batches++;
      await Bun.sleep(50);
    }
  })();
  await Bun.sleep(2_000);
  await victim.kill();
  await waitFor(async () => (await ownerOf(survivors[0]!, ids[0]!)) !== victim.nodeId, 15_000, "ownership to move");
  await Bun.sleep(4_000);
  publishing = false;
  await producer;
  const want = new Map([...acked].map(([m, s]) => [m, [...s].sort(bySeq)]));
  await waitFor(async () => [...clients].every(([m, cs]) => cs.every((c) => c.events.length >= want.get(m)!.length)), 20_000, "clients to catch up").catch(
    () => {},
  );
  for (const cs of clients.values()) for (const c of cs) c.close();
  let events = 0;
  for (const [m, cs] of clients) {
    events += want.get(m)!.length;
    for (const c of cs) {
      expect(orderProblems(c.ids())).toEqual({ duplicates: 0, disorder: 0 });
      expect(c.ids()).toEqual(want.get(m)!);
    }
  }
  expect(events).toBeGreaterThan(0);
  console.log(
    `batch failover: ${batches} batches of ${BATCH_ITEMS} over ${MATCHES} matches (${MATCHES / 2} owned by the victim), ${retried} retried, ${events} acknowledged events, ${CLIENTS_PER_MATCH * MATCHES} clients exact`,
  );
});
