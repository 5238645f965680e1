/**
 * A publish through a node cut off from NATS never says "not stored" of an event that is then stored.
 * The node's link to NATS is black-holed while a producer keeps publishing through it, keyed, then
 * healed. Every answer is checked against the log afterwards: an answer that says nothing was sent
 * (`not_ready`, `draining`) must name an event that was not stored; `publish_outcome_unknown` may go
 * either way (its retry with the same key stores it at most once); a 201 must be stored, once.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startFaultCluster, type FaultCluster } from "./harness.ts";

setDefaultTimeout(120_000);

const PUBLISH_EVERY_MS = 50;
const PARTITION_MS = 8_000;
/** Answers that promise nothing reached NATS. */
const NOTHING_SENT = new Set(["not_ready", "draining"]);

let cluster: FaultCluster;

beforeAll(async () => {
  cluster = await startFaultCluster();
});

afterAll(async () => {
  await cluster?.stop();
});

interface Answer {
  key: string;
  status: number;
  error?: string;
  id?: string;
}

test("through a black-holed node: no event answered 'nothing sent' is stored; every 201 is stored once", async () => {
  const node = cluster.nodes[0]!;
  const match = `outcome-${Date.now().toString(36)}`;
  const answers: Answer[] = [];
  const inFlight: Promise<void>[] = [];
  let n = 0;
  const publishOne = async (): Promise<void> => {
    const key = `k${n++}`;
    const res = await fetch(`${node.fixture.url}/matches/${match}/events`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "goal", data: { key }, key }),
      signal: AbortSignal.timeout(30_000),
    }).catch(() => undefined);
    if (!res) return void answers.push({ key, status: 0 });
    const body = (await res.json().catch(() => ({}))) as { error?: string; id?: string };
    answers.push({ key, status: res.status, ...(body.error ? { error: body.error } : {}), ...(body.id ? { id: body.id } : {}) });
  };
  const run = async (ms: number): Promise<void> => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      inFlight.push(publishOne());
      await Bun.sleep(PUBLISH_EVERY_MS);
    }
  };
  await run(1_000);
  node.link.blackhole();
  await run(PARTITION_MS);
  node.link.heal();
  await run(2_000);
  await Promise.all(inFlight);

  // What the log holds for the match, read through a healthy node after everything settled.
  await Bun.sleep(3_000);
  const stored = new Map<string, number>();
  let after = "0";
  for (;;) {
    const page = (await (await fetch(`${cluster.nodes[1]!.fixture.url}/matches/${match}/poll?after=${encodeURIComponent(after)}&wait=0`)).json()) as {
      events: { id: string; data: { key: string } }[];
      next: string | null;
    };
    for (const e of page.events) stored.set(e.data.key, (stored.get(e.data.key) ?? 0) + 1);
    if (page.events.length === 0 || !page.next) break;
    after = page.next;
  }

  const byKind = (pred: (a: Answer) => boolean) => answers.filter(pred);
  const ok = byKind((a) => a.status === 201);
  const nothingSent = byKind((a) => a.status === 503 && NOTHING_SENT.has(a.error ?? ""));
  const unknown = byKind((a) => a.status === 503 && a.error === "publish_outcome_unknown");
  const other = byKind((a) => a.status !== 201 && !(a.status === 503 && (NOTHING_SENT.has(a.error ?? "") || a.error === "publish_outcome_unknown")));
  expect(other).toEqual([]);
  for (const a of ok) expect(stored.get(a.key)).toBe(1);
  for (const a of nothingSent) expect(stored.has(a.key)).toBe(false);
  for (const count of stored.values()) expect(count).toBe(1);
  expect(nothingSent.length).toBeGreaterThan(0);
  const unknownStored = unknown.filter((a) => stored.has(a.key)).length;
  console.log(
    `publish outcome: ${answers.length} publishes through a node black-holed for ${PARTITION_MS} ms: ${ok.length} stored (201), ${nothingSent.length} 'nothing sent' (none stored), ${unknown.length} outcome unknown (${unknownStored} of them stored after the heal)`,
  );
});
