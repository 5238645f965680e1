/**
 * The local cluster's NATS: the server already answering at NATS_URL if there is one, otherwise a
 * JetStream nats-server started here with its store under .tmp/ (kept between runs, so matches and
 * their history survive a restart of the cluster, as they would in production).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Service, waitUntil } from "./service.ts";

const PROBE_TIMEOUT_MS = 1000;
const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;

export interface LocalNats {
  url: string;
  /** Set when this run started the server (and so stops it). */
  service: Service | undefined;
  storeDir: string | undefined;
}

export function natsHostPort(url: string): { host: string; port: number } {
  const first = url.split(",")[0]!.trim();
  const u = new URL(first.includes("://") ? first : `nats://${first}`);
  return { host: u.hostname || "127.0.0.1", port: Number(u.port || 4222) };
}

/** A NATS server greets every new connection with an `INFO {...}` line. */
export async function natsAnswers(host: string, port: number): Promise<boolean> {
  const greeted = Promise.withResolvers<boolean>();
  const timer = setTimeout(() => greeted.resolve(false), PROBE_TIMEOUT_MS);
  try {
    const socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data: (_s, chunk) => greeted.resolve(Buffer.from(chunk).toString("latin1").startsWith("INFO ")),
        close: () => greeted.resolve(false),
        error: () => greeted.resolve(false),
      },
    });
    const answered = await greeted.promise;
    socket.end();
    return answered;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export async function ensureNats(url: string, workDir: string): Promise<LocalNats> {
  const { host, port } = natsHostPort(url);
  if (await natsAnswers(host, port)) return { url, service: undefined, storeDir: undefined };
  if (!Bun.which("nats-server")) throw new Error(`no NATS answers at ${url} and nats-server is not on PATH (apt-get install nats-server)`);
  const storeDir = join(workDir, "nats");
  mkdirSync(storeDir, { recursive: true });
  const service = new Service({
    name: "nats",
    cmd: ["nats-server", "-js", "-sd", storeDir, "-a", host, "-p", String(port)],
    logFile: join(workDir, "nats.log"),
  });
  await waitUntil(`nats-server on ${host}:${port}`, () => natsAnswers(host, port), {
    timeoutMs: START_TIMEOUT_MS,
    abandon: () => (service.running ? undefined : `exited; its log ends with:\n${service.logTail()}`),
  }).catch(async (err: unknown) => {
    await service.stop("SIGINT", STOP_GRACE_MS);
    throw err;
  });
  return { url, service, storeDir };
}
