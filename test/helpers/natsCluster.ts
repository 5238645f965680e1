/**
 * Test fixture: a real three-server NATS cluster with JetStream (the compose topology: nats1..3, routes
 * between all three), each server a `nats-server` process with its own store folder, on free ports.
 * A server can be killed and started again on the same ports and store, as a crashed container would be.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, waitFor } from "./cluster.ts";

const CLUSTER_NAME = "touchline-test";
const SERVERS = 3;
/** Electing the first meta leader takes a couple of seconds on a loaded machine. */
const FORMED_TIMEOUT_MS = 20_000;
/** A restarted server has to catch up with the others' logs before it counts as current. */
const REJOIN_TIMEOUT_MS = 20_000;

interface MetaCluster {
  leader?: string;
  cluster_size?: number;
  replicas?: { name: string; current: boolean }[];
}

export interface NatsClusterFixture {
  /** Client URL of each server, by index. */
  urls: string[];
  /** All client URLs comma-joined: the NATS_URL a node gets. */
  url: string;
  /** Server names (`--name`), by index: what JetStream reports as a stream's or the meta leader. */
  names: string[];
  /** Monitoring base URL of each server (`/jsz`, `/connz`, `/healthz`). */
  monitorUrls: string[];
  indexOf(name: string): number;
  running(i: number): boolean;
  /** The JetStream meta leader's name, as the first running server reports it. */
  metaLeader(): Promise<string | undefined>;
  /** Kills server `i` with SIGKILL (a crash: no goodbye to the routes or clients). */
  stop(i: number): Promise<void>;
  /** Starts server `i` again on its ports and store; resolves once the meta leader counts it current. */
  restart(i: number): Promise<void>;
  close(): Promise<void>;
}

interface ServerPorts {
  client: number;
  route: number;
  monitor: number;
}

async function jsz(monitorUrl: string): Promise<MetaCluster | undefined> {
  const body = (await (await fetch(`${monitorUrl}/jsz`)).json()) as { meta_cluster?: MetaCluster };
  return body.meta_cluster;
}

export async function startNatsCluster(): Promise<NatsClusterFixture> {
  const root = mkdtempSync(join(tmpdir(), "touchline-natscluster-"));
  const ports: ServerPorts[] = [];
  for (let i = 0; i < SERVERS; i++) ports.push({ client: await freePort(), route: await freePort(), monitor: await freePort() });
  const names = ports.map((_, i) => `nats${i + 1}`);
  const urls = ports.map((p) => `nats://127.0.0.1:${p.client}`);
  const monitorUrls = ports.map((p) => `http://127.0.0.1:${p.monitor}`);
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(",");
  const procs: (Subprocess | undefined)[] = new Array(SERVERS).fill(undefined);

  const launch = (i: number): void => {
    const p = ports[i]!;
    procs[i] = Bun.spawn(
      [
        "nats-server",
        "--name",
        names[i]!,
        "-js",
        "-sd",
        join(root, names[i]!),
        "-a",
        "127.0.0.1",
        "-p",
        String(p.client),
        "-m",
        String(p.monitor),
        "--cluster_name",
        CLUSTER_NAME,
        "--cluster",
        `nats://127.0.0.1:${p.route}`,
        "--routes",
        routes,
      ],
      { stdout: "ignore", stderr: process.env.TEST_ECHO ? "inherit" : "ignore" },
    );
  };
  const running = (i: number): boolean => procs[i] !== undefined && procs[i]!.exitCode === null && !procs[i]!.killed;
  const kill = async (i: number): Promise<void> => {
    const proc = procs[i];
    if (!proc) return;
    proc.kill("SIGKILL");
    await proc.exited;
    procs[i] = undefined;
  };
  /** Every running server reports a meta leader, and the leader counts every other running server current. */
  const formed = async (): Promise<boolean> => {
    const up = names.map((_, i) => i).filter(running);
    const views = await Promise.all(up.map((i) => jsz(monitorUrls[i]!)));
    const leader = views[0]?.leader;
    if (!leader || views.some((v) => v?.leader !== leader)) return false;
    const leaderIndex = names.indexOf(leader);
    if (!running(leaderIndex)) return false;
    const leaderView = await jsz(monitorUrls[leaderIndex]!);
    const current = new Set((leaderView?.replicas ?? []).filter((r) => r.current).map((r) => r.name));
    return up.every((i) => i === leaderIndex || current.has(names[i]!));
  };

  for (let i = 0; i < SERVERS; i++) launch(i);
  try {
    await waitFor(formed, FORMED_TIMEOUT_MS, "the NATS cluster to elect a JetStream meta leader");
  } catch (err) {
    await Promise.all(names.map((_, i) => kill(i)));
    rmSync(root, { recursive: true, force: true });
    throw err;
  }

  return {
    urls,
    url: urls.join(","),
    names,
    monitorUrls,
    indexOf: (name) => names.indexOf(name),
    running,
    metaLeader: async () => {
      const i = names.findIndex((_, j) => running(j));
      return i < 0 ? undefined : (await jsz(monitorUrls[i]!))?.leader;
    },
    stop: kill,
    restart: async (i) => {
      await kill(i);
      launch(i);
      await waitFor(formed, REJOIN_TIMEOUT_MS, `${names[i]} to rejoin the NATS cluster`);
    },
    close: async () => {
      await Promise.all(names.map((_, i) => kill(i)));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
