/**
 * JetStream consumers are bounded per node and returned to the server. Counted on the server itself
 * ($JS.API.CONSUMER.LIST through jetstreamManager), never through the node:
 * - a node's live reading costs at most one consumer on the event stream however many matches it owns
 *   (the stream tail); before, every owned match held one (20,000 matches: 20,102 consumers); a node
 *   alone whose stores are the only ones holds none once that lasted a second (src/bus/streamTail.ts);
 * - a history read's consumer is deleted when the read ends;
 * - a killed node's consumers lapse within seconds (`inactive_threshold`, which was once converted to
 *   nanoseconds twice, so consumers outlived their readers by months).
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNats, startNode, waitFor, waitForClusterSize, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openSse } from "../helpers/sse.ts";
import { publishOk, readJson, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(120_000);

const EVENTS_STREAM = "touchline_events";
/** The stream tail: a node's only standing consumer on the event stream (none while fed by its acknowledgements). */
const TAIL_CONSUMERS_PER_NODE = 1;
/** A lone node stops its tail's consumer after a second of its own stores only (OWN_STORES_QUIET_MS), checked each tick. */
const TAIL_STOPS_WITHIN_MS = 5_000;
/** History reads a node runs at once (READS_IN_FLIGHT in src/bus/eventLog.ts), each a consumer while it lasts. */
const READS_IN_FLIGHT = 16;
const SAMPLE_MS = 100;
const MANY_MATCHES = 2000;
const BATCH = 1000;
const FOLLOWED = 40;
/** A killed node's consumers go within their inactive threshold (10 s) plus the server's sweep. */
const CONSUMERS_GONE_WITHIN_MS = 30_000;

let nats: NatsFixture;
let node: NodeFixture;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url, env: { WINDOW_EVENTS: "16" } });
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await node?.kill();
  await nats?.stop();
});

async function consumersOn(stream: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  let n = 0;
  for await (const _ of jsm.consumers.list(stream)) n++;
  return n;
}

test(`${MANY_MATCHES} active matches on one node: at most one standing consumer on the event stream, at most ${READS_IN_FLIGHT} reads besides`, async () => {
  expect(await consumersOn(EVENTS_STREAM)).toBeLessThanOrEqual(TAIL_CONSUMERS_PER_NODE);
  // Sampled throughout: starting 2,000 owners and serving resumes never holds more than the tail
  // plus the reads in flight.
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await consumersOn(EVENTS_STREAM));
      await Bun.sleep(SAMPLE_MS);
    }
  })();
  const matches = Array.from({ length: MANY_MATCHES }, () => uniqueMatch("many"));
  for (let i = 0; i < matches.length; i += BATCH) {
    const res = await fetch(`${node.url}/events`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(matches.slice(i, i + BATCH).map((match) => ({ match, type: "goal", data: { n: 1 } }))),
    });
    expect(res.status).toBe(201);
    await res.body?.cancel();
  }
  // Every match has an owner actor on this node once discovery saw its event.
  await waitFor(
    async () => {
      const m = await readJson<{ owned: number }>(await fetch(`${node.url}/cluster`));
      return m.json.owned >= MANY_MATCHES;
    },
    30_000,
    `${MANY_MATCHES} owned matches`,
  );
  const quiet = () => consumersOn(EVENTS_STREAM).then((n) => n <= TAIL_CONSUMERS_PER_NODE);
  await waitFor(quiet, 30_000, "the owners' start-up reads to end");

  // Streams of some of them, resuming from before their windows (history reads), then closed.
  const followed = matches.slice(0, FOLLOWED);
  for (const m of followed) for (let n = 2; n <= 40; n++) await publishOk(node.url, m, { type: "goal", data: { n } });
  const streams = await Promise.all(followed.map((m) => openSse(`${node.url}/matches/${m}/events`, { headers: { "Last-Event-ID": "1" } })));
  await Promise.all(streams.map((s) => s.untilEvents(39)));
  for (const s of streams) await s.close();
  // History reads delete their consumers as they end: nothing lingers.
  await waitFor(quiet, 5_000, "the resumes' reads to end");
  sampling = false;
  await sampler;
  expect(peak).toBeLessThanOrEqual(TAIL_CONSUMERS_PER_NODE + READS_IN_FLIGHT);
  // Alone, with only its own stores: the tail hands them on from their acknowledgements, no consumer at all.
  await waitFor(async () => (await consumersOn(EVENTS_STREAM)) === 0, TAIL_STOPS_WITHIN_MS, "the lone node's tail to stop its consumer");
  const last = matches[0] as string;
  await publishOk(node.url, last, { type: "goal", data: { n: 41 } });
  const after = await openSse(`${node.url}/matches/${last}/events`, { headers: { "Last-Event-ID": "1" } });
  await after.untilEvents(40);
  await after.close();
  console.log(
    `consumers on the event stream: peak ${peak}, ${await consumersOn(EVENTS_STREAM)} at rest, with ${MANY_MATCHES} owned matches and ${FOLLOWED} resumed streams`,
  );
});

test("a killed node's consumers are gone from the server soon after", async () => {
  const streams = ["touchline_events", "KV_touchline_members", "KV_touchline_owners", "KV_touchline_index"];
  const count = async () => (await Promise.all(streams.map(consumersOn))).reduce((a, b) => a + b, 0);
  const before = await count();
  const second = await startNode({ natsUrl: nats.url });
  await waitForClusterSize([node, second], 2);
  const withSecond = await count();
  expect(withSecond).toBeGreaterThan(before);
  await second.kill();
  const killedAt = Date.now();
  await waitFor(async () => (await count()) <= before, CONSUMERS_GONE_WITHIN_MS, `consumers back to ${before}`);
  console.log(`consumers: ${before} with one node, ${withSecond} with two, back to ${await count()} ${Date.now() - killedAt} ms after kill -9 of the second`);
});
