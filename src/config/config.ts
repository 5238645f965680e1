/**
 * Node configuration: every knob of the contract, read once from the environment and validated at
 * start-up. A bad value stops the node with one line naming the variable (see ConfigError). Each
 * variable is declared once, with its default, unit and bounds, in settings.ts; the loaders here take
 * them from there and add the checks that relate one setting to another.
 */
import { hostname } from "node:os";
import { AddressSet } from "../limits/addressSet.ts";
import { LIMIT_DEFAULTS, type LimitsConfig } from "../limits/limitsConfig.ts";
import { parseTrustProxy } from "../limits/trustProxy.ts";
import { maxStreamTargetBytes } from "../match/cursor.ts";
import { LOG_LEVELS, type LogLevel } from "../telemetry/logger.ts";
import { ConfigError } from "./configError.ts";
import { type Env, givenText } from "./environment.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { loadNatsConfig, type NatsConfig } from "./natsConfig.ts";
import { loadSecurityConfig, type SecurityConfig } from "./securityConfig.ts";
import { settingSpec, type SettingName } from "./settings.ts";
import { readTracingEnv, type TracingEnv } from "./tracingSettings.ts";

export interface Config {
  port: number;
  host: string;
  /** NATS_URL and how the node authenticates to NATS and trusts its certificates (natsConfig.ts). */
  nats: NatsConfig;
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
  /** MAX_STATE_BYTES: the largest JSON of one match's state (match/stateSize.ts). */
  maxStateBytes: number;
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
  /** A listed match's changed entry is written for the other nodes at most this long after the change. */
  indexRefreshMs: number;
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
  /** LOG_LEVEL: least level of the JSON log lines. */
  logLevel: LogLevel;
  /** EVENT_LOOP_LAG_WINDOW_MS: the lag gauge keeps the worst probe of this window. */
  eventLoopLagWindowMs: number;
  /** OTEL_SERVICE_NAME: service.name of the spans (the resource detector also honours OTEL_RESOURCE_ATTRIBUTES). */
  serviceName: string;
  /** Whether and how spans are exported, from the standard OTEL_* variables (config/tracingSettings.ts). */
  tracing: TracingEnv;
}

export { ConfigError } from "./configError.ts";
export { parseDuration } from "./duration.ts";

/** The value of a setting as given, trimmed; undefined when unset or blank. */
function given(env: Env, name: SettingName): string | undefined {
  return givenText(env, name);
}

/** A default the declaration gives, for a loader that has none of its own (a derived one). */
function declaredDefault(name: SettingName): string {
  const fallback = settingSpec(name).default;
  if (fallback === undefined) throw new Error(`settings.ts declares no default for ${name}; its loader must derive one`);
  return fallback;
}

interface Bounds {
  /** Overrides the declaration's default (a default derived at start-up). */
  fallback?: number;
  /** Overrides the declaration's lower bound (a bound that depends on another setting). */
  min?: number;
}

/** A whole number within the declared bounds. */
function integer(env: Env, name: SettingName, bounds: Bounds = {}): number {
  const spec = settingSpec(name);
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return bounds.fallback ?? Number(declaredDefault(name));
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const value = Number(raw.trim());
  const min = bounds.min ?? spec.min ?? 0;
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  if (value < min || value > max) throw new ConfigError(name, `expected ${min}..${max}, got ${value}`);
  return value;
}

/** A duration (`15s`, `1m`, `500ms`, or a bare number of milliseconds) within the declared bounds. */
function duration(env: Env, name: SettingName, bounds: Bounds = {}): number {
  const spec = settingSpec(name);
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return bounds.fallback ?? parseDuration(declaredDefault(name))!;
  const ms = parseDuration(raw);
  if (ms === undefined) throw new ConfigError(name, `expected a duration like 24h, 30m, 45s or 500ms (a bare number is milliseconds), got "${raw}"`);
  const min = bounds.min ?? spec.min ?? 0;
  if (ms < min) throw new ConfigError(name, `must be at least ${min} ms`);
  if (spec.max !== undefined && ms > spec.max) throw new ConfigError(name, `must be at most ${spec.max} ms (${formatDuration(spec.max)})`);
  return ms;
}

/** A duration that is off unless set (`off`, `0` or unset): Infinity. */
function optionalDuration(env: Env, name: SettingName): number {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "" || raw === "off" || raw === "0") return Number.POSITIVE_INFINITY;
  return duration(env, name);
}

/** A setting parsed by a function that throws an Error saying what is wrong. */
function parsed<T>(env: Env, name: SettingName, parse: (raw: string) => T): T {
  const raw = given(env, name) ?? declaredDefault(name);
  try {
    return parse(raw);
  } catch (err) {
    throw new ConfigError(name, (err as Error).message);
  }
}

/** One of the declared choices, case-insensitive. */
function choice<T extends string>(env: Env, name: SettingName, choices: readonly T[]): T {
  const raw = given(env, name)?.toLowerCase() ?? declaredDefault(name);
  if (!(choices as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `expected one of ${choices.join(", ")}, got "${env[name]}"`);
  }
  return raw as T;
}

/**
 * Unsent bytes at which a stream is cut at once, as a multiple of CLIENT_BUFFER_BYTES. Large enough for a
 * burst of large events queued in one turn (a few 64 KiB bodies over a 256 KiB buffer) to reach a reader
 * that drains it; small enough that a stalled client costs a bounded number of bytes during the grace.
 */
const CLIENT_BUFFER_CEILING_FACTOR = 4;
/**
 * Whatever the factor, the ceiling holds the buffer plus one largest event (MAX_BODY_BYTES) and this
 * much for the frame around it (its id, event and data lines, the match and time in its data, a
 * multiplexed stream's long id): with a buffer under a quarter of the largest body, one such event cut
 * every stream it reached at once, the fastest readers and a just-opened stream's snapshot with them.
 */
const CEILING_FRAME_ALLOWANCE_BYTES = 64 * 1024;

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off"]);

function flag(env: Env, name: SettingName): boolean {
  const raw = given(env, name)?.toLowerCase() ?? declaredDefault(name);
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
  const m = /--max-http-header-size[= ](\d+)/.exec(given(env, "BUN_OPTIONS") ?? "");
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
  const trustProxy = parsed(env, "TRUST_PROXY", parseTrustProxy);
  const proxyProtocol = flag(env, "PROXY_PROTOCOL");
  if (proxyProtocol && trustProxy.kind === "none") {
    // Otherwise anyone reaching the port could name any address and dodge every per-address limit.
    throw new ConfigError("PROXY_PROTOCOL", "needs TRUST_PROXY to name the balancers allowed to send the header (e.g. TRUST_PROXY=private)");
  }
  const streamRatePerAddress = integer(env, "STREAM_RATE_PER_ADDRESS");
  const publishRate = integer(env, "PUBLISH_RATE");
  const maxHeaderBytes = integer(env, "MAX_HEADER_BYTES");
  return {
    maxStreamsPerAddress: integer(env, "MAX_STREAMS_PER_ADDRESS"),
    streamRatePerAddress,
    // A burst below the rate would cap the rate itself: unless set, the burst follows a higher rate.
    streamBurstPerAddress: integer(env, "STREAM_BURST_PER_ADDRESS", { fallback: Math.max(LIMIT_DEFAULTS.streamBurstPerAddress, streamRatePerAddress) }),
    publishRate,
    publishBurst: integer(env, "PUBLISH_BURST", { fallback: Math.max(LIMIT_DEFAULTS.publishBurst, publishRate) }),
    maxHeaderBytes,
    maxStreamHeaderBytes: streamHeadBytes(env, maxMatchesPerStream, maxHeaderBytes),
    trustProxy,
    proxyProtocol,
    exempt: parsed(env, "LIMITS_EXEMPT", AddressSet.parse),
    maxTrackedKeys: integer(env, "LIMITER_MAX_KEYS"),
  };
}

/** Soft open-file limit of this process; the connection cap is derived from it. */
function openFileLimit(): number {
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
  const port = integer(env, "PORT");
  const host = given(env, "HOST") ?? declaredDefault("HOST");
  const nats = loadNatsConfig(env, declaredDefault("NATS_URL"));
  const nodeId = given(env, "NODE_ID") ?? `${hostname()}-${port}`;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(nodeId)) {
    throw new ConfigError("NODE_ID", `"${nodeId}" must match [A-Za-z0-9_-]{1,64} (it is used in NATS subjects)`);
  }
  const secret = env.TOUCHLINE_JWT_SECRET;
  if (secret !== undefined && secret.length > 0 && secret.length < 16) {
    throw new ConfigError("TOUCHLINE_JWT_SECRET", "must be at least 16 characters");
  }
  const namespace = given(env, "TOUCHLINE_NAMESPACE") ?? declaredDefault("TOUCHLINE_NAMESPACE");
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(namespace)) {
    throw new ConfigError("TOUCHLINE_NAMESPACE", "must match [a-z][a-z0-9_]{0,31}");
  }
  const membershipRenewMs = duration(env, "MEMBERSHIP_RENEW_MS");
  const maxMatchesPerStream = integer(env, "MAX_MATCHES_PER_STREAM");
  const clientBufferBytes = integer(env, "CLIENT_BUFFER_BYTES");
  const maxBodyBytes = integer(env, "MAX_BODY_BYTES");
  const windowBytes = integer(env, "WINDOW_BYTES");
  // The budget must hold at least one full window, or every window would be trimmed below its own cap.
  const windowBudgetBytes = integer(env, "WINDOW_BUDGET_BYTES", {
    fallback: Math.max(Number(declaredDefault("WINDOW_BUDGET_BYTES")), windowBytes),
    min: windowBytes,
  });
  const advertisedHost = given(env, "ADVERTISED_HOST") ?? (WILDCARD_HOSTS.has(host) ? hostname() : host);
  if (!/^[A-Za-z0-9.:_[\]-]{1,253}$/.test(advertisedHost)) {
    throw new ConfigError("ADVERTISED_HOST", `"${advertisedHost}" is not a host name or address`);
  }
  return {
    port,
    host,
    nats,
    nodeId,
    advertisedHost,
    jwtSecret: secret && secret.length > 0 ? secret : undefined,
    heartbeatMs: duration(env, "HEARTBEAT_MS"),
    maxConnections: integer(env, "MAX_CONNECTIONS", { fallback: Math.max(MIN_MAX_CONNECTIONS, openFileLimit() - FD_HEADROOM) }),
    clientBufferBytes,
    clientBufferCeilingBytes: Math.max(clientBufferBytes * CLIENT_BUFFER_CEILING_FACTOR, clientBufferBytes + maxBodyBytes + CEILING_FRAME_ALLOWANCE_BYTES),
    slowClientGraceMs: duration(env, "SLOW_CLIENT_GRACE"),
    retryMs: duration(env, "RETRY_MS"),
    retentionMs: duration(env, "RETENTION"),
    maxMatchesPerStream,
    maxBodyBytes,
    maxStateBytes: integer(env, "MAX_STATE_BYTES"),
    batchMaxItems: integer(env, "BATCH_MAX_ITEMS"),
    batchMaxBytes: integer(env, "BATCH_MAX_BYTES"),
    windowEvents: integer(env, "WINDOW_EVENTS"),
    windowBytes,
    windowBudgetBytes,
    actorIdleMs: duration(env, "ACTOR_IDLE"),
    indexRefreshMs: duration(env, "INDEX_REFRESH"),
    membershipRenewMs,
    membershipTtlMs: duration(env, "MEMBERSHIP_TTL", { min: membershipRenewMs * 2 }),
    pollWaitMs: duration(env, "POLL_WAIT"),
    drainMs: duration(env, "DRAIN"),
    drainNoticeMs: duration(env, "DRAIN_NOTICE"),
    maxStreamAgeMs: optionalDuration(env, "MAX_STREAM_AGE"),
    collectAfterStreamChurn: integer(env, "GC_AFTER_STREAM_CHURN"),
    namespace,
    jetstreamReplicas: integer(env, "JETSTREAM_REPLICAS"),
    limits: loadLimits(env, maxMatchesPerStream),
    security: loadSecurityConfig(env),
    logLevel: choice(env, "LOG_LEVEL", LOG_LEVELS),
    eventLoopLagWindowMs: duration(env, "EVENT_LOOP_LAG_WINDOW_MS"),
    serviceName: given(env, "OTEL_SERVICE_NAME") ?? declaredDefault("OTEL_SERVICE_NAME"),
    tracing: readTracingEnv(env),
  };
}
