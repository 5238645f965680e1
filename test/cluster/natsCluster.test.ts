/**
 * Touchline on a three-server JetStream cluster, as compose.yaml runs it (nats1..3, JETSTREAM_REPLICAS=3):
 * the log and the buckets are kept on all three servers, and losing one server (killed, the leader of the
 * event stream) loses no acknowledged event. Publishes may be refused with 503 while JetStream elects new
 * leaders; a producer retries them with the same key, as the contract says.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import { names } from "../../src/bus/subjects.ts";
import { startNode, waitFor, waitForClusterSize, type NodeFixture } from "../helpers/cluster.ts";
import { startNatsCluster, type NatsClusterFixture } from "../helpers/natsCluster.ts";
import { bySeq, commonTag } from "../helpers/eventIds.ts";
import { ResumingClient, orderProblems } from "../helpers/resumingClient.ts";
import { publish } from "../integration/touchlineApi.ts";

setDefaultTimeout(45_000);

const REPLICAS = 3;
const NAMES = names("touchline");
const STREAMS = [NAMES.stream, `KV_${NAMES.membersBucket}`, `KV_${NAMES.ownersBucket}`, `KV_${NAMES.indexBucket}`];
const PUBLISH_PER_SECOND = 20;
const CLIENTS = 30;
const BEFORE_KILL_MS = 2000;
const AFTER_KILL_MS = 6000;
/** Longer than the JetStream publish timeout (5 s), so a hung publish shows as a timeout, not a 503. */
const PUBLISH_REQUEST_TIMEOUT_MS = 10_000;
const RETRY_PAUSE_MS = 100;
/** Leader step-downs tried to put the event stream's leader on a server a node is connected to. */
/**
 * Each step-down elects one of the two other servers at random, so when every node is connected to one
 * server, six missed it in about one run of 64 (a CI failure); twenty miss it in about one of a million.
 */
const MAX_STEPDOWNS = 20;
const READY_POLL_MS = 100;
/**
 * Recovery after losing a server is bounded by JetStream's elections (4-10 s measured here, on a shared
 * machine) plus replacing consumers placed on the dead server: give clients this long to catch up.
 */
const CATCH_UP_MS = 25_000;
const CLOSE_WAIT_MS = 2000;

let nats: NatsClusterFixture;
let nodes: NodeFixture[] = [];
let nc: NatsConnection;
let jsm: JetStreamManager;
const run = Math.random().toString(36).slice(2, 7);
const nodeUrls = () => nodes.map((n) => n.url);

/** Outcome of publishing a series of events with retries: what was acknowledged and how long it failed. */
interface PublishLog {
  acked: string[];
  /** Answers other than 200/201, by status (or "timeout" / "network"), counted per attempt. */
  refusals: Record<string, number>;
  /** Longest stretch from a failed attempt to the next acknowledged one. */
  longestFailingMs: number;
  /** Longest time one event took from its first attempt to its acknowledgement. */
  longestPublishMs: number;
}

/** Publishes `perSecond` events through the nodes in turn, each retried with its key until acknowledged. */
function publisher(match: string, perSecond: number): { stop(): Promise<PublishLog> } {
  const log: PublishLog = { acked: [], refusals: {}, longestFailingMs: 0, longestPublishMs: 0 };
  let failingSince: number | undefined;
  let stopped = false;
  const once = async (url: string, n: number): Promise<string | undefined> => {
    let outcome: string;
    try {
      const answer = await publish(url, match, { type: "tick", data: { n }, key: `${match}-${n}` });
      if (answer.status === 201 || answer.status === 200) return answer.json.id;
      outcome = String(answer.status);
    } catch (err) {
      outcome = (err as Error).name === "TimeoutError" ? "timeout" : "network";
    }
    log.refusals[outcome] = (log.refusals[outcome] ?? 0) + 1;
    return undefined;
  };
  const done = (async () => {
    for (let n = 0; !stopped; n++) {
      const started = Date.now();
      for (let attempt = 0; ; attempt++) {
        const url = nodeUrls()[(n + attempt) % nodes.length]!;
        const id = await withTimeout(once(url, n));
        if (id !== undefined) {
          log.acked.push(id);
          if (failingSince !== undefined) log.longestFailingMs = Math.max(log.longestFailingMs, Date.now() - failingSince);
          failingSince = undefined;
          break;
        }
        failingSince ??= Date.now();
        await Bun.sleep(RETRY_PAUSE_MS);
      }
      log.longestPublishMs = Math.max(log.longestPublishMs, Date.now() - started);
      await Bun.sleep(Math.max(0, 1000 / perSecond - (Date.now() - started)));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
      return log;
    },
  };
}

/** fetch has no default timeout: a publish hanging past the JetStream timeout must show, not stall the test. */
async function withTimeout(p: Promise<string | undefined>): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error("publish hung"), { name: "TimeoutError" })), PUBLISH_REQUEST_TIMEOUT_MS);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls every node's /readyz; reports, per node, the total time it was not ready. */
function readinessWatch(): { stop(): Promise<Record<string, number>> } {
  const notReadyMs: Record<string, number> = Object.fromEntries(nodes.map((n) => [n.nodeId, 0]));
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const t0 = Date.now();
      const states = await Promise.all(nodes.map(async (n) => (await fetch(`${n.url}/readyz`).catch(() => undefined))?.status === 200));
      await Bun.sleep(READY_POLL_MS);
      nodes.forEach((n, i) => {
        if (!states[i]) notReadyMs[n.nodeId]! += Date.now() - t0;
      });
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
      return notReadyMs;
    },
  };
}

/** Which Touchline nodes each NATS server has as clients (from its /connz). */
async function nodesByServer(): Promise<string[][]> {
  return Promise.all(
    nats.monitorUrls.map(async (m, i) => {
      if (!nats.running(i)) return [];
      const connz = (await (await fetch(`${m}/connz?limit=1024`)).json()) as { connections?: { name?: string }[] };
      return (connz.connections ?? []).map((c) => c.name ?? "").filter((n) => n.startsWith("touchline-"));
    }),
  );
}

async function info(stream: string): Promise<StreamInfo> {
  return jsm.streams.info(stream);
}

/** Every stream has a leader and its other replicas are current. */
async function allCurrent(expectedPeers: number): Promise<boolean> {
  const infos = await Promise.all(STREAMS.map(info));
  return infos.every((i) => !!i.cluster?.leader && (i.cluster.replicas ?? []).filter((r) => r.current).length === expectedPeers);
}

async function allReady(): Promise<boolean> {
  return (await Promise.all(nodes.map(async (n) => (await fetch(`${n.url}/readyz`)).status === 200))).every(Boolean);
}

/** Every client received exactly the acknowledged ids (`<seq>@<tag>`, one tag), once each, in sequence order. */
function expectExactly(clients: ResumingClient[], acked: string[]): void {
  if (acked.length > 0) commonTag(acked);
  const want = [...new Set(acked)].sort(bySeq);
  expect(want.length).toBe(acked.length);
  for (const c of clients) {
    const ids = c.ids();
    expect(orderProblems(ids)).toEqual({ duplicates: 0, disorder: 0 });
    expect(ids).toEqual(want);
  }
}

beforeAll(async () => {
  nats = await startNatsCluster();
  nodes = await Promise.all([0, 1, 2].map((i) => startNode({ natsUrl: nats.url, nodeId: `r${i}-${run}`, env: { JETSTREAM_REPLICAS: String(REPLICAS) } })));
  await waitForClusterSize(nodes, nodes.length);
  nc = await connect({ servers: nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  try {
    await Promise.all(nodes.filter((n) => n.proc.exitCode === null).map((n) => n.kill()));
    // Closing a connection that is reconnecting can take a while: never let it keep the servers running.
    await Promise.race([nc?.close(), Bun.sleep(CLOSE_WAIT_MS)]);
  } finally {
    await nats?.close();
  }
});

describe("on a three-server NATS cluster", () => {
  test("the event log and the three buckets are kept on all three servers", async () => {
    for (const stream of STREAMS) {
      const i = await info(stream);
      expect(i.config.num_replicas).toBe(REPLICAS);
      expect(i.cluster?.leader).toBeOneOf(nats.names);
      expect((i.cluster?.replicas ?? []).map((r) => r.name).sort()).toEqual(nats.names.filter((n) => n !== i.cluster?.leader).sort());
    }
  });

  test("killing the event stream's leader server under load: every client gets every acknowledged event once, in order", async () => {
    // Put the stream's leader on a server some node is connected to, so the kill takes both a leader and
    // a node's connection away (step-downs elect a random other peer).
    let leader = (await info(NAMES.stream)).cluster!.leader!;
    for (let i = 0; i < MAX_STEPDOWNS && (await nodesByServer())[nats.indexOf(leader)]!.length === 0; i++) {
      await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${NAMES.stream}`);
      await waitFor(
        async () => !!(await info(NAMES.stream)).cluster?.leader && (await info(NAMES.stream)).cluster!.leader !== leader,
        10_000,
        "a new stream leader",
      );
      leader = (await info(NAMES.stream)).cluster!.leader!;
    }
    const victim = nats.indexOf(leader);
    const onVictim = (await nodesByServer())[victim]!;
    expect(onVictim.length).toBeGreaterThan(0);
    const metaLeader = await nats.metaLeader();
    const kvLed = (await Promise.all(STREAMS.slice(1).map(info))).filter((i) => i.cluster?.leader === leader).map((i) => i.config.name);

    const match = `ncl-${run}`;
    const clients = Array.from({ length: CLIENTS }, (_, i) => new ResumingClient(`/matches/${match}/events`, nodeUrls, i));
    await waitFor(async () => clients.every((c) => c.snapshots > 0), 10_000, "snapshots");
    const readiness = readinessWatch();
    const pub = publisher(match, PUBLISH_PER_SECOND);
    await Bun.sleep(BEFORE_KILL_MS);
    await nats.stop(victim);
    await Bun.sleep(AFTER_KILL_MS);
    const log = await pub.stop();
    await waitFor(allReady, 15_000, "every node ready");
    await waitFor(async () => clients.every((c) => c.events.length >= log.acked.length), CATCH_UP_MS, "clients to catch up").catch(() => {});
    await Bun.sleep(300);
    for (const c of clients) c.close();
    const notReady = await readiness.stop();
    const longestGap = Math.max(...clients.map((c) => c.longestGapMs));
    const reconnected = clients.filter((c) => c.reconnects > 0).length;
    console.log(
      `nats failover: killed ${leader} (event stream leader${leader === metaLeader ? ", meta leader" : ""}${kvLed.length ? `, leader of ${kvLed.join(" ")}` : ""}; ` +
        `nodes on it: ${onVictim.join(" ")}); ${log.acked.length} events acknowledged; publishes failing for at most ${log.longestFailingMs} ms ` +
        `(refusals ${JSON.stringify(log.refusals)}), slowest publish ${log.longestPublishMs} ms; time each node was not ready ${JSON.stringify(notReady)} ms; ` +
        `${reconnected}/${CLIENTS} clients reconnected; longest gap a client saw ${longestGap} ms`,
    );
    expect(Object.keys(log.refusals).filter((k) => k !== "503")).toEqual([]);
    expectExactly(clients, log.acked);
  });

  test("the killed server restarts and rejoins: the cluster then survives losing another server", async () => {
    const down = nats.names.findIndex((_, i) => !nats.running(i));
    expect(down).toBeGreaterThanOrEqual(0);
    await nats.restart(down);
    // The restarted server caught up with every stream: all three hold current copies again.
    await waitFor(() => allCurrent(REPLICAS - 1), 20_000, "every stream to have current replicas on all three servers");
    const other = (down + 1) % nats.names.length;
    await nats.stop(other);
    const killedAt = Date.now();
    const match = `ncl-rejoin-${run}`;
    const clients = [0, 1, 2].map((i) => new ResumingClient(`/matches/${match}/events`, nodeUrls, i));
    await waitFor(async () => clients.every((c) => c.snapshots > 0), CATCH_UP_MS, "snapshots");
    const servingAfterMs = Date.now() - killedAt;
    const pub = publisher(match, PUBLISH_PER_SECOND);
    await Bun.sleep(1000);
    const log = await pub.stop();
    await waitFor(async () => clients.every((c) => c.events.length >= log.acked.length), CATCH_UP_MS, "clients to catch up").catch(() => {});
    for (const c of clients) c.close();
    console.log(
      `after ${nats.names[down]} rejoined and ${nats.names[other]} was killed: a new match served (snapshots on every node) ${servingAfterMs} ms after the kill; ` +
        `${log.acked.length} events, publishes failing for at most ${log.longestFailingMs} ms`,
    );
    expect(log.acked.length).toBeGreaterThan(0);
    expectExactly(clients, log.acked);
  });
});
