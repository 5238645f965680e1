/**
 * The local cluster's one entry port: haproxy in TCP mode, run from a config rendered out of the same
 * cluster/haproxy.cfg that compose mounts, when haproxy is installed; otherwise the Bun TCP balancer.
 * Both spread connections round-robin with no stickiness.
 */
import { join } from "node:path";
import { HAPROXY_TEMPLATE_PATH, renderLocalHaproxyConfig } from "../haproxyConfig.ts";
import { startTcpBalancer, type Backend } from "../tcpBalancer.ts";
import { Service, tcpOpen, waitUntil } from "./service.ts";

const START_TIMEOUT_MS = 10_000;
const HAPROXY_STOP_GRACE_MS = 3_000;

export type BalancerKind = "haproxy" | "bun";

export interface Entry {
  kind: BalancerKind;
  url: string;
  /** The rendered haproxy config, when haproxy runs. */
  configFile?: string;
  logFile?: string;
  stop(): Promise<void>;
}

export interface EntryOptions {
  host: string;
  port: number;
  nodes: (Backend & { name: string })[];
  workDir: string;
  /** Forces one balancer; by default haproxy when it is on PATH. */
  prefer?: BalancerKind;
}

export function chooseBalancer(prefer: BalancerKind | undefined): BalancerKind {
  if (prefer) return prefer;
  return Bun.which("haproxy") ? "haproxy" : "bun";
}

export async function startEntry(opts: EntryOptions): Promise<Entry> {
  const url = `http://${opts.host}:${opts.port}`;
  if (chooseBalancer(opts.prefer) === "bun") {
    const balancer = startTcpBalancer({ port: opts.port, hostname: opts.host, backends: () => opts.nodes });
    return { kind: "bun", url, stop: async () => balancer.stop() };
  }
  const configFile = join(opts.workDir, "haproxy.cfg");
  const logFile = join(opts.workDir, "haproxy.log");
  const template = await Bun.file(HAPROXY_TEMPLATE_PATH).text();
  await Bun.write(configFile, renderLocalHaproxyConfig(template, { entryHost: opts.host, entryPort: opts.port, backends: opts.nodes }));
  // -db: stay in the foreground, so this process owns it and its log goes to the file.
  const service = new Service({ name: "haproxy", cmd: ["haproxy", "-db", "-f", configFile], logFile });
  await waitUntil(`haproxy on ${opts.host}:${opts.port}`, () => tcpOpen(opts.host, opts.port), {
    timeoutMs: START_TIMEOUT_MS,
    abandon: () => (service.running ? undefined : `exited; its log ends with:\n${service.logTail()}`),
  }).catch(async (err: unknown) => {
    await service.stop("SIGTERM", HAPROXY_STOP_GRACE_MS);
    throw err;
  });
  return {
    kind: "haproxy",
    url,
    configFile,
    logFile,
    stop: async () => {
      await service.stop("SIGTERM", HAPROXY_STOP_GRACE_MS);
    },
  };
}
