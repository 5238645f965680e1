/**
 * Every JetStream consumer a node creates disappears from the server soon after the node stops using
 * it. Consumers are counted on the server itself ($JS.API.CONSUMER.LIST through jetstreamManager), not
 * through the node. Before the fix, `inactive_threshold` was converted to nanoseconds twice and
 * consumers outlived their readers by months: a node that followed 20,000 matches left 20,102 behind.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNats, startNode, waitFor, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openSse } from "../helpers/sse.ts";
import { publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(90_000);

const MATCHES = 40;
/** Actors stop this long after their last client leaves; their consumers then lapse (10 s on the server). */
const ACTOR_IDLE = "1s";
const CONSUMERS_GONE_WITHIN_MS = 30_000;

let nats: NatsFixture;
let node: NodeFixture;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url, env: { ACTOR_IDLE } });
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await node?.kill();
  await nats?.stop();
});

async function consumersOnServer(): Promise<number> {
  const jsm = await jetstreamManager(nc);
  let n = 0;
  for await (const _ of jsm.consumers.list("touchline_events")) n++;
  return n;
}

test("the consumers of matches a node followed are gone from the server soon after it stops following them", async () => {
  const baseline = await consumersOnServer();
  const matches = Array.from({ length: MATCHES }, () => uniqueMatch("cons"));
  for (const m of matches) await publishOk(node.url, m, { type: "goal", data: { n: 1 } });
  // A reader per match (owner actors follow JetStream), plus a history read for a resume from id 1.
  const streams = await Promise.all(matches.map((m) => openSse(`${node.url}/matches/${m}/events`)));
  await Promise.all(streams.map((s) => s.untilEvents(1)));
  const following = await consumersOnServer();
  expect(following).toBeGreaterThanOrEqual(baseline + MATCHES);
  for (const s of streams) await s.close();

  const started = Date.now();
  await waitFor(async () => (await consumersOnServer()) <= baseline, CONSUMERS_GONE_WITHIN_MS, `consumers back to ${baseline}`);
  console.log(`consumers: ${baseline} before, ${following} while following ${MATCHES} matches, back to ${await consumersOnServer()} ${Date.now() - started} ms after the streams closed`);
});
