/**
 * Settings every node of a cluster must share (src/cluster/sharedSettings.ts). A node started with
 * other values (a stale env file, a node left out of a rolling change) is named by the others: one log
 * line per change, `/cluster`'s `settingsDiffer`, and the gauge touchline_cluster_nodes_with_other_settings.
 * The log's retention is the cluster's: a node started with another RETENTION leaves it while any other
 * live node runs with the old one, and the last node of the change applies it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, millis, type NatsConnection } from "@nats-io/transport-node";
import { type NatsFixture, type NodeFixture, startNats, startNode, waitFor, withNodeLogs } from "../helpers/cluster.ts";

const SECRET = "a-shared-secret-of-32-characters";
const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;

let nats: NatsFixture;
let nc: NatsConnection;
const nodes: NodeFixture[] = [];

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => (n.proc.exitCode === null ? n.kill() : Promise.resolve())));
  await nc.close();
  await nats.stop();
});

async function start(nodeId: string, env: Record<string, string>): Promise<NodeFixture> {
  const node = await startNode({ natsUrl: nats.url, nodeId, env: { LOG_LEVEL: "info", ...env } });
  nodes.push(node);
  return node;
}

interface ClusterView {
  nodes: { id: string; settings?: Record<string, unknown> }[];
  settingsDiffer: { node: string; differences: { setting: string; here: unknown; there: unknown }[] }[];
}

async function clusterView(node: NodeFixture): Promise<ClusterView> {
  return (await (await fetch(`${node.url}/cluster`)).json()) as ClusterView;
}

async function otherSettingsGauge(node: NodeFixture): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("touchline_cluster_nodes_with_other_settings "));
  return Number(line?.split(" ")[1]);
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

test("a node with other cluster settings is named by the others: one log line per change, /cluster, the gauge", async () => {
  const env = { TOUCHLINE_NAMESPACE: "settings", TOUCHLINE_JWT_SECRET: SECRET };
  const secured = await start("secured", env);
  const twin = await start("twin", env);
  const open = await start("open", { TOUCHLINE_NAMESPACE: "settings", MAX_STATE_BYTES: "32768" });
  await withNodeLogs(nodes, async () => {
    await waitFor(async () => (await clusterView(secured)).nodes.length === 3, 15_000, "a cluster of three");
    await waitFor(async () => (await clusterView(secured)).settingsDiffer.length === 1, 10_000, "the open node named");

    const view = await clusterView(secured);
    expect(view.settingsDiffer).toEqual([
      {
        node: "open",
        differences: [
          { setting: "MAX_STATE_BYTES", here: 65_536, there: 32_768 },
          { setting: "TOKENS", here: "required", there: "off" },
        ],
      },
    ]);
    expect(view.nodes.find((n) => n.id === "twin")?.settings).toMatchObject({ TOKENS: "required", MAX_STATE_BYTES: 65_536, RETENTION: DAY_MS });
    // The announcement never carries the key itself.
    expect(JSON.stringify(view)).not.toContain(SECRET);
    expect(await otherSettingsGauge(secured)).toBe(1);
    expect(await otherSettingsGauge(twin)).toBe(1);
    await waitFor(async () => (await clusterView(open)).settingsDiffer.length === 2, 10_000, "the open node naming both others");
    expect(await otherSettingsGauge(open)).toBe(2);

    // Several renewals later (every 500 ms here), each node has said it once, as an error (tokens differ).
    await Bun.sleep(2_000);
    const line = "another node runs with other cluster settings: publishing needs a token on one of the two only";
    expect(count(secured.output(), line)).toBe(1);
    expect(secured.output()).toContain("MAX_STATE_BYTES 32768 there, 65536 here; TOKENS off there, required here");
    expect(
      secured
        .output()
        .split("\n")
        .find((l) => l.includes(line)),
    ).toContain('"level":"error"');
    expect(count(open.output(), line)).toBe(2);
    expect(count(twin.output(), "another node runs with other cluster settings")).toBe(1);
    expect(secured.output()).not.toContain(SECRET);

    // The odd node leaves: nothing differs any more.
    expect(await open.stop()).toBe(0);
    await waitFor(async () => (await clusterView(secured)).settingsDiffer.length === 0, 10_000, "the open node gone from settingsDiffer");
    expect(await otherSettingsGauge(secured)).toBe(0);
  });
  await Promise.all([secured.stop(), twin.stop()]);
}, 90_000);

test("RETENTION: a node started with another value leaves the log's while an older node is live; the last one changes it", async () => {
  const jsm = await jetstreamManager(nc);
  const maxAgeOf = async (stream: string) => millis((await jsm.streams.info(stream)).config.max_age);
  // The log, and the match index whose entries point into it.
  const retentionOfLog = async () => [await maxAgeOf("retention_events"), await maxAgeOf("KV_retention_index")];
  const env = (retention: string) => ({ TOUCHLINE_NAMESPACE: "retention", RETENTION: retention });

  const first = await start("r1", env("24h"));
  expect(await retentionOfLog()).toEqual([DAY_MS, DAY_MS]);
  const changed = await start("r2", env("1h"));
  await withNodeLogs(nodes, async () => {
    // r1 still runs with 24 h: the log keeps it, and r2 says why.
    expect(await retentionOfLog()).toEqual([DAY_MS, DAY_MS]);
    expect(changed.output()).toContain("the event log keeps its retention: other live nodes run with another RETENTION");
    expect(changed.output()).toContain("r1: 86400000");

    // r1 is restarted with the new value (the last node of the change): it applies it.
    expect(await first.stop()).toBe(0);
    const restarted = await start("r1", env("1h"));
    expect(await retentionOfLog()).toEqual([HOUR_MS, HOUR_MS]);
    expect(restarted.output()).toContain("the event log's retention changed to this node's RETENTION");
    expect(restarted.output()).toContain('"fromMs":86400000');
  });
}, 90_000);
