/**
 * Streams a plain EventSource keeps: stock EventSources (the `eventsource` package, no reconnection code
 * of ours: a non-200 answer ends them for good) through a round-robin TCP balancer. A full node and an
 * address over its stream rate refuse with `200` + `retry:` + `touchline.refused`, so every client comes
 * back by itself and none gives up; `?heartbeat=1` shows heartbeats to the page; MAX_STREAM_AGE rotates
 * streams so a node added later takes its share. Every client is checked against every acknowledged id.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { EventSource } from "eventsource";
import { freePort, startNats, startNode, waitForClusterSize, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { startTcpBalancer, type TcpBalancer } from "../../cluster/tcpBalancer.ts";
import { publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(120_000);

const RETRY_MS = 300;
const SMALL_NODE_STREAMS = 20;
const CLIENTS = 60;

let nats: NatsFixture;
const nodes: NodeFixture[] = [];
const balancers: TcpBalancer[] = [];
const sources: EventSource[] = [];

beforeAll(async () => {
  nats = await startNats();
});

afterAll(async () => {
  for (const s of sources) s.close();
  for (const b of balancers) b.stop();
  await Promise.all(nodes.map((n) => (n.proc.exitCode === null ? n.kill() : Promise.resolve())));
  await nats?.stop();
});

async function node(env: Record<string, string>, namespace: string): Promise<NodeFixture> {
  const n = await startNode({ natsUrl: nats.url, env: { RETRY_MS: String(RETRY_MS), TOUCHLINE_NAMESPACE: namespace, ...env } });
  nodes.push(n);
  return n;
}

async function balancer(backends: () => NodeFixture[]): Promise<string> {
  const port = await freePort();
  balancers.push(startTcpBalancer({ port, hostname: "127.0.0.1", backends: () => backends().map((n) => ({ host: "127.0.0.1", port: n.port })) }));
  return `http://127.0.0.1:${port}`;
}

interface Client {
  es: EventSource;
  ids: string[];
  refusals: { at: number; retryAfterMs: number }[];
  opens: { at: number; node?: string }[];
  pings: number;
  gaveUp: boolean;
}

function client(url: string): Client {
  const es = new EventSource(url);
  sources.push(es);
  const c: Client = { es, ids: [], refusals: [], opens: [], pings: 0, gaveUp: false };
  es.addEventListener("goal", (e) => c.ids.push(e.lastEventId));
  es.addEventListener("touchline.refused", (e) =>
    c.refusals.push({ at: Date.now(), retryAfterMs: (JSON.parse(e.data) as { retryAfterMs: number }).retryAfterMs }),
  );
  es.addEventListener("touchline.hello", (e) => c.opens.push({ at: Date.now(), node: (JSON.parse(e.data) as { node: string }).node }));
  es.addEventListener("touchline.ping", () => c.pings++);
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) c.gaveUp = true;
  });
  return c;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** Every client has exactly the acknowledged ids after the ones it had when it joined, in order, and none gave up. */
function expectExact(clients: Client[], acked: string[]): void {
  for (const c of clients) {
    expect(c.gaveUp).toBe(false);
    expect(c.ids).toEqual(acked);
  }
}

test(`a full node refuses in the SSE form: ${CLIENTS} EventSources over a node holding ${SMALL_NODE_STREAMS} and a roomy one all stream, none gives up`, async () => {
  const ns = "tlfull";
  const small = await node({ MAX_CONNECTIONS: String(SMALL_NODE_STREAMS) }, ns);
  const big = await node({}, ns);
  await waitForClusterSize([small, big], 2);
  const entry = await balancer(() => [small, big]);
  const m = uniqueMatch("full");
  await publishOk(big.url, m, { type: "kickoff" });
  const clients = Array.from({ length: CLIENTS }, () => client(`${entry}/matches/${m}/events?hello=1`));
  const started = Date.now();
  await until(() => clients.every((c) => c.opens.length > 0 || c.gaveUp), 30_000, "every client streaming");
  const allInMs = Date.now() - started;
  // Near capacity the small node tells balancers it is not ready.
  const ready = await fetch(`${small.url}/readyz`);
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { saturated: boolean }).saturated).toBe(true);

  const acked: string[] = [];
  for (let i = 0; i < 10; i++) acked.push(await publishOk(big.url, m, { type: "goal", data: { i }, key: `g${i}` }));
  await until(() => clients.every((c) => c.ids.length >= acked.length || c.gaveUp), 20_000, "every goal everywhere");
  expectExact(clients, acked);
  const refused = clients.filter((c) => c.refusals.length > 0);
  expect(refused.length).toBeGreaterThan(0);
  const comeback = refused.map((c) => c.opens[0]!.at - c.refusals[0]!.at).sort((a, b) => a - b);
  const onSmall = clients.filter((c) => c.opens.at(-1)?.node === small.nodeId).length;
  expect(onSmall).toBeLessThanOrEqual(SMALL_NODE_STREAMS);
  console.log(
    `full node: ${refused.length}/${CLIENTS} clients refused at least once (${clients.reduce((n, c) => n + c.refusals.length, 0)} refusals), all streaming after ${allInMs} ms; back after a refusal in p50 ${comeback[Math.floor(comeback.length / 2)]} ms, max ${comeback.at(-1)} ms; ${onSmall} on the small node`,
  );
});

test("an address over its stream rate is refused in the SSE form and comes back by itself", async () => {
  const ns = "tlrate";
  const limited = await node({ LIMITS_EXEMPT: "none", STREAM_RATE_PER_ADDRESS: "2", STREAM_BURST_PER_ADDRESS: "2" }, ns);
  const m = uniqueMatch("rate");
  await publishOk(limited.url, m, { type: "kickoff" });
  const clients = Array.from({ length: 8 }, () => client(`${limited.url}/matches/${m}/events?hello=1`));
  await until(() => clients.every((c) => c.opens.length > 0 || c.gaveUp), 30_000, "every client streaming");
  const acked = [await publishOk(limited.url, m, { type: "goal", key: "r1" })];
  await until(() => clients.every((c) => c.ids.length >= 1 || c.gaveUp), 10_000, "the goal everywhere");
  expectExact(clients, acked);
  expect(clients.filter((c) => c.refusals.length > 0).length).toBeGreaterThan(0);
});

test("?heartbeat=1 sends touchline.ping events an EventSource dispatches; they carry no id, so Last-Event-ID stays", async () => {
  const n = await node({ HEARTBEAT_MS: "300" }, "tlbeat");
  const m = uniqueMatch("beat");
  await publishOk(n.url, m, { type: "kickoff" });
  const c = client(`${n.url}/matches/${m}/events?heartbeat=1`);
  await until(() => c.pings >= 3, 5_000, "three pings");
  // On the wire: a named event without an id line (an id would move the browser's Last-Event-ID).
  const res = await fetch(`${n.url}/matches/${m}/events?heartbeat=1`);
  const reader = res.body!.getReader();
  let text = "";
  const decoder = new TextDecoder();
  while (!text.includes("event: touchline.ping")) text += decoder.decode((await reader.read()).value);
  await reader.cancel();
  const frame = text.split("\n\n").find((f) => f.includes("event: touchline.ping"))!;
  expect(frame).toBe("event: touchline.ping\ndata: {}");
});

test("MAX_STREAM_AGE rotates streams: after a node is added, streams spread over both, every event exactly once", async () => {
  const ns = "tlrot";
  const first = await node({ MAX_STREAM_AGE: "10s" }, ns);
  const pool = [first];
  const entry = await balancer(() => pool);
  const m = uniqueMatch("rot");
  await publishOk(first.url, m, { type: "kickoff" });
  const clients = Array.from({ length: 30 }, () => client(`${entry}/matches/${m}/events?hello=1`));
  await until(() => clients.every((c) => c.opens.length > 0), 15_000, "every client streaming");
  const second = await node({ MAX_STREAM_AGE: "10s" }, ns);
  pool.push(second);
  await waitForClusterSize(pool, 2);
  const spread = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const c of clients) {
      const at = c.opens.at(-1)?.node ?? "none";
      out[at] = (out[at] ?? 0) + 1;
    }
    return out;
  };
  const before = spread();
  const acked: string[] = [];
  // Publish through the rotation window (10 s ± 20%), then wait until every stream has rotated once.
  const until13s = Date.now() + 13_000;
  let i = 0;
  while (Date.now() < until13s) {
    acked.push(await publishOk(first.url, m, { type: "goal", data: { i }, key: `rot${i}` }));
    i++;
    await Bun.sleep(200);
  }
  await until(() => clients.every((c) => c.opens.length >= 2 && c.ids.length >= acked.length), 15_000, "every stream rotated and caught up");
  const after = spread();
  expectExact(clients, acked);
  expect(after[second.nodeId] ?? 0).toBeGreaterThan(0);
  console.log(
    `rotation: streams per node before the scale-out ${JSON.stringify(before)}, after one rotation ${JSON.stringify(after)}; ${acked.length} events, every client exact`,
  );
});

test("a drain under load: every EventSource moves to the other node, none gives up, every event exactly once", async () => {
  const ns = "tldrain";
  const env = { DRAIN: "2s", DRAIN_NOTICE: "300ms" };
  const leaving = await node(env, ns);
  const staying = await node(env, ns);
  await waitForClusterSize([leaving, staying], 2);
  const entry = await balancer(() => [leaving, staying]);
  const m = uniqueMatch("drain");
  await publishOk(staying.url, m, { type: "kickoff" });
  const clients = Array.from({ length: 40 }, () => client(`${entry}/matches/${m}/events?hello=1`));
  await until(() => clients.every((c) => c.opens.length > 0), 15_000, "every client streaming");
  const onLeaving = clients.filter((c) => c.opens[0]!.node === leaving.nodeId);
  expect(onLeaving.length).toBeGreaterThan(0);

  const acked: string[] = [];
  let publishing = true;
  const producer = (async () => {
    for (let i = 0; publishing; i++) {
      acked.push(await publishOk(staying.url, m, { type: "goal", data: { i }, key: `d${i}` }));
      await Bun.sleep(50);
    }
  })();
  await Bun.sleep(500);
  const termAt = Date.now();
  const exit = leaving.stop();
  await until(() => onLeaving.every((c) => c.opens.length >= 2), 15_000, "the drained clients back");
  const back = onLeaving.map((c) => c.opens[1]!.at - termAt).sort((a, b) => a - b);
  expect(await exit).toBe(0);
  await Bun.sleep(500);
  publishing = false;
  await producer;
  await until(() => clients.every((c) => c.ids.length >= acked.length || c.gaveUp), 10_000, "every goal everywhere");
  expectExact(clients, acked);
  for (const c of onLeaving) expect(c.opens.at(-1)!.node).toBe(staying.nodeId);
  console.log(
    `drain: ${onLeaving.length} clients on the draining node back on the other after ${back[0]}..${back.at(-1)} ms (p50 ${back[Math.floor(back.length / 2)]} ms; notice 300 ms, DRAIN 2 s); ${acked.length} events, every client exact`,
  );
});
