/**
 * Owner ticks ("still at seq N" on a match's feed, which lets a follower notice that it lost the last
 * event) go out only while a follower node serves the match. An idle match owned and watched on one node
 * costs NATS nothing; once another node's clients watch it, the owner ticks again.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { decodeWire } from "../../src/bus/wireCodec.ts";
import type { FeedMessage } from "../../src/actors/services.ts";
import { startCluster, type ClusterFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { getJson, publishOk, uniqueMatch } from "../integration/touchlineApi.ts";

setDefaultTimeout(60_000);

/** Longer than an owner's silence before it ticks (2 s) plus one sweep (1 s). */
const IDLE_WATCH_MS = 4_000;

let cluster: ClusterFixture;
let nc: NatsConnection;
const streams: SseConnection[] = [];

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2 });
  nc = await connect({ servers: cluster.natsUrl });
});

afterAll(async () => {
  for (const s of streams) await s.close();
  await nc?.close();
  await cluster?.stop();
});

async function watch(url: string): Promise<SseConnection> {
  const s = await openSse(url);
  streams.push(s);
  await s.until(() => s.snapshots.length === 1, 10_000, "snapshot");
  return s;
}

/** Feed messages of `match` from now on, by kind, until `stop`. */
async function feedOf(match: string): Promise<{ kinds: string[]; stop(): void }> {
  const kinds: string[] = [];
  const sub = nc.subscribe(`*.feed.${match}`, {
    callback: (_err, msg) => {
      kinds.push(decodeWire<FeedMessage>(msg.data).kind);
    },
  });
  // The server has the subscription before anything it should see is published.
  await nc.flush();
  return { kinds, stop: () => sub.unsubscribe() };
}

/** Feed messages of `match` seen during `ms`, by kind. */
async function feedDuring(match: string, ms: number): Promise<string[]> {
  const feed = await feedOf(match);
  await Bun.sleep(ms);
  feed.stop();
  return feed.kinds;
}

test("an owner ticks only while a follower node has clients on the match", async () => {
  const match = uniqueMatch("ticks");
  const answer = await getJson<{ owner: string }>(`${cluster.nodes[0]!.url}/cluster/owner/${match}`);
  const owner = cluster.nodes.find((n) => n.nodeId === answer.json.owner) as NodeFixture;
  const follower = cluster.nodes.find((n) => n !== owner) as NodeFixture;

  const local = await watch(`${owner.url}/matches/${match}/events`);
  // Watched from before the kick-off: the owner puts every event on the feed (a follower may join at any
  // time), and its message may leave after the local client has the event, so it is counted, not raced.
  const feed = await feedOf(match);
  const id = await publishOk(owner.url, match, { type: "kickoff", data: null });
  await local.until(() => local.events.some((e) => e.lastEventId === id), 10_000, "the kick-off");
  await Bun.sleep(IDLE_WATCH_MS);
  feed.stop();
  // The kick-off once, and no tick while nobody on another node watches.
  expect(feed.kinds).toEqual(["event"]);

  await watch(`${follower.url}/matches/${match}/events`);
  const kinds = await feedDuring(match, IDLE_WATCH_MS);
  expect(kinds.length).toBeGreaterThanOrEqual(2);
  expect(new Set(kinds)).toEqual(new Set(["tick"]));
});
