/**
 * Node configuration: every knob of the contract, read once from the environment and validated at
 * start-up. A bad value stops the node with one line naming the variable (see ConfigError).
 */
import { hostname } from "node:os";
import { AddressSet } from "../limits/addressSet.ts";
import { LIMIT_DEFAULTS, type LimitsConfig } from "../limits/limitsConfig.ts";
import { parseTrustProxy } from "../limits/trustProxy.ts";
import { maxStreamTargetBytes } from "../match/cursor.ts";
import { loadSecurityConfig, type SecurityConfig } from "./securityConfig.ts";

export interface Config {
  port: number;
  host: string;
  natsUrls: string[];
  nodeId: string;
  /**
   * Host name other nodes and operators reach this node by (shown in /cluster). ADVERTISED_HOST, else
   * HOST when it names one address, else the machine's host name: in a container that is the name
   * Docker's DNS answers for, so scaled replicas need no per-node setting.
   */
  advertisedHost: string;
  jwtSecret: string | undefined;
  heartbeatMs: number;
  maxConnections: number;
  clientBufferBytes: number;
  /**
   * Unsent bytes past which a stream is cut at once (a multiple of clientBufferBytes): between the two a
   * client is cut only if it stays over clientBufferBytes for slowClientGraceMs, so a reader taking a
   * burst of large events is never cut, and memory stays bounded by bytes either way.
   */
  clientBufferCeilingBytes: number;
  /** How long a stream may stay over clientBufferBytes before it is judged slow and cut. */
  slowClientGraceMs: number;
  retryMs: number;
  retentionMs: number;
  maxMatchesPerStream: number;
  maxBodyBytes: number;
  /** Batch publishing (`POST /events`): most items, and most bytes of the whole JSON array. */
  batchMaxItems: number;
  batchMaxBytes: number;
  /** Recent events each match actor keeps in memory to serve reconnects without JetStream. */
  windowEvents: number;
  /** Bytes of encoded events each match keeps in memory at most (besides windowEvents). */
  windowBytes: number;
  /** Bytes all match windows of the node share; past it the oldest events of all windows go first. */
  windowBudgetBytes: number;
  /** How long an actor with no subscribers and no ownership lingers before it stops. */
  actorIdleMs: number;
  /** Membership: how often a node renews its entry, and after how long without renewal it is dead. */
  membershipRenewMs: number;
  membershipTtlMs: number;
  /** Long-poll wait bound. */
  pollWaitMs: number;
  /**
   * Stream opens and closes after which, once a half-second passes without any, the node runs one full
   * garbage collection (stream/churnCollector.ts); 0 turns it off.
   */
  collectAfterStreamChurn: number;
  /** DRAIN: SIGTERM spreads the closing of this node's streams over this long. */
  drainMs: number;
  /** DRAIN_NOTICE: after SIGTERM, how long /readyz says 503 while streams stay, so balancers notice first. */
  drainNoticeMs: number;
  /** MAX_STREAM_AGE: streams older than this (±20%) are closed to resume elsewhere; Infinity when off. */
  maxStreamAgeMs: number;
  /** Copies JetStream keeps of the event log and the buckets (3 on a three-server NATS cluster). */
  jetstreamReplicas: number;
  /** Prefix of every NATS subject, stream and bucket name, so several clusters can share a server. */
  namespace: string;
  /** Abuse limits (src/limits): per client address, per token, request sizes. */
  limits: LimitsConfig;
  /** Token keys beyond the secret, CORS origins, HTTPS (config/securityConfig.ts). */
  security: SecurityConfig;
}

export class ConfigError extends Error {
  constructor(readonly variable: string, detail: string) {
    super(`invalid ${variable}: ${detail}`);
  }
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new ConfigError(name, `expected ${min}..${max}, got ${value}`);
  return value;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `24h`, `90m`, `30s`, `500ms`, `2d`, or a bare number of milliseconds. */
export function parseDuration(raw: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!m) return undefined;
  return Number(m[1]) * DURATION_UNITS[m[2] ?? "ms"]!;
}

function duration(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const ms = parseDuration(raw);
  if (ms === undefined) throw new ConfigError(name, `expected a duration like 24h, 30m, 45s or 500ms, got "${raw}"`);
  if (ms < min) throw new ConfigError(name, `must be at least ${min} ms`);
  return ms;
}

/** Rotation faster than this would make clients spend more time reconnecting than streaming. */
const MIN_STREAM_AGE_MS = 10_000;

/** A duration that is off unless set (`off`, `0` or unset): Infinity. */
function optionalDuration(env: Env, name: string, min: number): number {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "" || raw === "off" || raw === "0") return Number.POSITIVE_INFINITY;
  return duration(env, name, Number.POSITIVE_INFINITY, min);
}

/** A setting parsed by a function that throws an Error saying what is wrong. */
function parsed<T>(env: Env, name: string, fallback: string, parse: (raw: string) => T): T {
  const raw = env[name]?.trim() || fallback;
  try {
    return parse(raw);
  } catch (err) {
    throw new ConfigError(name, (err as Error).message);
  }
}

/** Bounds of the abuse-limit settings (LIMITER_MAX_KEYS holds a scan from many addresses to bounded memory). */
const MIN_LIMITER_KEYS = 100;
const MAX_LIMITER_KEYS = 10_000_000;
const MAX_RATE = 1_000_000;
const MIN_HEADER_BYTES = 1024;
const MAX_HEADER_BYTES = 1_048_576;

/**
 * Unsent bytes at which a stream is cut at once, as a multiple of CLIENT_BUFFER_BYTES. Large enough for a
 * burst of large events queued in one turn (a few 64 KiB bodies over a 256 KiB buffer) to reach a reader
 * that drains it; small enough that a stalled client costs a bounded number of bytes during the grace.
 */
const CLIENT_BUFFER_CEILING_FACTOR = 4;
const DEFAULT_CLIENT_BUFFER_BYTES = 1_048_576;
const DEFAULT_SLOW_CLIENT_GRACE_MS = 3000;
const DEFAULT_WINDOW_BYTES = 1_048_576;
const DEFAULT_WINDOW_BUDGET_BYTES = 256 * 1_048_576;
const MIN_WINDOW_BYTES = 1024;

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off"]);

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (TRUE_WORDS.has(raw)) return true;
  if (FALSE_WORDS.has(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${env[name]}"`);
}

/** Other headers a browser sends with a stream request (cookies, user agent, accept...), besides the resume. */
const STREAM_HEAD_SLACK_BYTES = 4096;
/** Bun refuses a longer head itself, with a bare 431, unless started with --max-http-header-size. */
const BUN_DEFAULT_HEAD_BYTES = 16_384;

/** Bun's own head limit for this process, from BUN_OPTIONS when it raises it. */
function bunHeadLimit(env: Env): number {
  const m = /--max-http-header-size[= ](\d+)/.exec(env.BUN_OPTIONS ?? "");
  return m ? Number(m[1]) : BUN_DEFAULT_HEAD_BYTES;
}

/**
 * The head a stream request may need: its longest target plus a Last-Event-ID line of the longest
 * composite id (never both in full, see maxStreamTargetBytes), plus room for ordinary headers.
 */
function streamHeadBytes(env: Env, maxMatchesPerStream: number, maxHeaderBytes: number): number {
  const needed = maxStreamTargetBytes(maxMatchesPerStream) + STREAM_HEAD_SLACK_BYTES;
  const limit = bunHeadLimit(env);
  if (needed > limit) {
    throw new ConfigError(
      "MAX_MATCHES_PER_STREAM",
      `a resume of ${maxMatchesPerStream} matches may need a ${needed}-byte request head, over Bun's ${limit}-byte limit: lower it, or raise Bun's with BUN_OPTIONS=--max-http-header-size=${needed}`,
    );
  }
  return Math.max(maxHeaderBytes, needed);
}

function loadLimits(env: Env, maxMatchesPerStream: number): LimitsConfig {
  const d = LIMIT_DEFAULTS;
  const trustProxy = parsed(env, "TRUST_PROXY", "false", parseTrustProxy);
  const proxyProtocol = flag(env, "PROXY_PROTOCOL", false);
  if (proxyProtocol && trustProxy.kind === "none") {
    // Otherwise anyone reaching the port could name any address and dodge every per-address limit.
    throw new ConfigError("PROXY_PROTOCOL", "needs TRUST_PROXY to name the balancers allowed to send the header (e.g. TRUST_PROXY=private)");
  }
  const streamRatePerAddress = integer(env, "STREAM_RATE_PER_ADDRESS", d.streamRatePerAddress, 0, MAX_RATE);
  const publishRate = integer(env, "PUBLISH_RATE", d.publishRate, 0, MAX_RATE);
  const maxHeaderBytes = integer(env, "MAX_HEADER_BYTES", d.maxHeaderBytes, MIN_HEADER_BYTES, MAX_HEADER_BYTES);
  return {
    maxStreamsPerAddress: integer(env, "MAX_STREAMS_PER_ADDRESS", d.maxStreamsPerAddress, 0),
    streamRatePerAddress,
    streamBurstPerAddress: integer(env, "STREAM_BURST_PER_ADDRESS", Math.max(d.streamBurstPerAddress, streamRatePerAddress), 1, MAX_RATE),
    publishRate,
    publishBurst: integer(env, "PUBLISH_BURST", Math.max(d.publishBurst, publishRate), 1, MAX_RATE),
    maxHeaderBytes,
    maxStreamHeaderBytes: streamHeadBytes(env, maxMatchesPerStream, maxHeaderBytes),
    trustProxy,
    proxyProtocol,
    exempt: parsed(env, "LIMITS_EXEMPT", d.exempt, AddressSet.parse),
    maxTrackedKeys: integer(env, "LIMITER_MAX_KEYS", d.maxTrackedKeys, MIN_LIMITER_KEYS, MAX_LIMITER_KEYS),
  };
}

/** Soft open-file limit of this process; the connection cap is derived from it. */
export function openFileLimit(): number {
  try {
    const out = Bun.spawnSync(["sh", "-c", "ulimit -n"]).stdout.toString().trim();
    const n = Number(out);
    return Number.isFinite(n) && n > 0 ? n : 1024;
  } catch {
    return 1024;
  }
}

/** Listening on every interface: no single address to advertise. */
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", "[::]"]);

/** File descriptors kept free for NATS, publishers, node-to-node traffic and the process itself. */
const FD_HEADROOM = 1024;
const MIN_MAX_CONNECTIONS = 1000;

export function loadConfig(env: Env = process.env): Config {
  const port = integer(env, "PORT", 3000, 0, 65535);
  const host = env.HOST?.trim() || "0.0.0.0";
  const natsRaw = env.NATS_URL?.trim() || "nats://127.0.0.1:4222";
  const natsUrls = natsRaw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const u of natsUrls) {
    if (!/^(nats|tls|ws|wss):\/\/[^\s/]+(:\d+)?\/?$/.test(u) && !/^[^\s/:]+:\d+$/.test(u)) {
      throw new ConfigError("NATS_URL", `"${u}" is not a NATS server URL (nats://host:port)`);
    }
  }
  const nodeId = env.NODE_ID?.trim() || `${hostname()}-${port}`;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(nodeId)) {
    throw new ConfigError("NODE_ID", `"${nodeId}" must match [A-Za-z0-9_-]{1,64} (it is used in NATS subjects)`);
  }
  const secret = env.TOUCHLINE_JWT_SECRET;
  if (secret !== undefined && secret.length > 0 && secret.length < 16) {
    throw new ConfigError("TOUCHLINE_JWT_SECRET", "must be at least 16 characters");
  }
  const namespace = env.TOUCHLINE_NAMESPACE?.trim() || "touchline";
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(namespace)) {
    throw new ConfigError("TOUCHLINE_NAMESPACE", "must match [a-z][a-z0-9_]{0,31}");
  }
  const membershipRenewMs = duration(env, "MEMBERSHIP_RENEW_MS", 1000, 100);
  const maxMatchesPerStream = integer(env, "MAX_MATCHES_PER_STREAM", 64, 1, 1000);
  const clientBufferBytes = integer(env, "CLIENT_BUFFER_BYTES", DEFAULT_CLIENT_BUFFER_BYTES, 1024);
  const windowBytes = integer(env, "WINDOW_BYTES", DEFAULT_WINDOW_BYTES, MIN_WINDOW_BYTES);
  // The budget must hold at least one full window, or every window would be trimmed below its own cap.
  const windowBudgetBytes = integer(env, "WINDOW_BUDGET_BYTES", Math.max(DEFAULT_WINDOW_BUDGET_BYTES, windowBytes), windowBytes);
  const advertisedHost = env.ADVERTISED_HOST?.trim() || (WILDCARD_HOSTS.has(host) ? hostname() : host);
  if (!/^[A-Za-z0-9.:_[\]-]{1,253}$/.test(advertisedHost)) {
    throw new ConfigError("ADVERTISED_HOST", `"${advertisedHost}" is not a host name or address`);
  }
  return {
    port,
    host,
    natsUrls,
    nodeId,
    advertisedHost,
    jwtSecret: secret && secret.length > 0 ? secret : undefined,
    heartbeatMs: integer(env, "HEARTBEAT_MS", 15_000, 100, 3_600_000),
    maxConnections: integer(env, "MAX_CONNECTIONS", Math.max(MIN_MAX_CONNECTIONS, openFileLimit() - FD_HEADROOM), 1),
    clientBufferBytes,
    clientBufferCeilingBytes: clientBufferBytes * CLIENT_BUFFER_CEILING_FACTOR,
    slowClientGraceMs: duration(env, "SLOW_CLIENT_GRACE", DEFAULT_SLOW_CLIENT_GRACE_MS, 0),
    retryMs: integer(env, "RETRY_MS", 1000, 0, 3_600_000),
    retentionMs: duration(env, "RETENTION", 24 * 3_600_000, 60_000),
    maxMatchesPerStream,
    maxBodyBytes: integer(env, "MAX_BODY_BYTES", 64 * 1024, 256, 16 * 1024 * 1024),
    batchMaxItems: integer(env, "BATCH_MAX_ITEMS", 1000, 1, 100_000),
    batchMaxBytes: integer(env, "BATCH_MAX_BYTES", 1_048_576, 256, 64 * 1024 * 1024),
    windowEvents: integer(env, "WINDOW_EVENTS", 2000, 16, 1_000_000),
    windowBytes,
    windowBudgetBytes,
    actorIdleMs: duration(env, "ACTOR_IDLE", 30_000, 100),
    membershipRenewMs,
    membershipTtlMs: duration(env, "MEMBERSHIP_TTL", 5000, membershipRenewMs * 2),
    pollWaitMs: duration(env, "POLL_WAIT", 25_000, 0),
    drainMs: duration(env, "DRAIN", 5000, 0),
    drainNoticeMs: duration(env, "DRAIN_NOTICE", 1000, 0),
    maxStreamAgeMs: optionalDuration(env, "MAX_STREAM_AGE", MIN_STREAM_AGE_MS),
    collectAfterStreamChurn: integer(env, "GC_AFTER_STREAM_CHURN", 1000, 0),
    namespace,
    jetstreamReplicas: integer(env, "JETSTREAM_REPLICAS", 1, 1, 5),
    limits: loadLimits(env, maxMatchesPerStream),
    security: loadSecurityConfig(env),
  };
}
