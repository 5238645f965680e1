/**
 * Every environment variable the node reads, declared once: name, type, default, unit, bounds and a
 * one-line meaning. The loaders (config.ts, tracingSettings.ts) take defaults and bounds from here,
 * `bun run node --help` and the table in docs/operators.md are rendered from here (settingsText.ts), and start-up
 * warns about variables that look like settings but are not (strayVariables.ts).
 *
 * A setting whose default depends on something known only at start-up (the host name, the open-file
 * limit, another setting) says so in `shown`; its loader computes the value.
 */
import { LOG_LEVELS } from "../telemetry/logger.ts";
import { SAMPLER_NAMES } from "../telemetry/tracingOptions.ts";
import { LIMIT_DEFAULTS } from "../limits/limitsConfig.ts";

export type SettingType =
  /** A whole number. */
  | "integer"
  /** `500ms`, `15s`, `1m`, `24h`, `2d`, or a bare number of milliseconds. */
  | "duration"
  /** true/false (also 1/0, yes/no, on/off unless noted). */
  | "flag"
  /** A number with a fraction. */
  | "number"
  | "text"
  /** Comma-separated. */
  | "list"
  /** One of the values named in the meaning. */
  | "choice"
  | "url"
  /** A path to a file read at start-up. */
  | "file"
  /** Never printed. */
  | "secret";

export type SettingGroup = "Node and cluster" | "Streams" | "Memory" | "Publishing" | "Shutdown" | "Security" | "Abuse limits" | "Logs and traces" | "Runtime";

export interface SettingSpec {
  group: SettingGroup;
  type: SettingType;
  /** The default as an operator would write it (the loader parses it like a value); absent: unset. */
  default?: string;
  /** How the default reads when it is derived at start-up or left to a library; shown instead of `default`. */
  shown?: string;
  /** Unit of a bare number: `ms` for durations, `bytes`, `per second`... */
  unit?: string;
  /** Bounds, in the unit (milliseconds for durations). */
  min?: number;
  max?: number;
  /** For `choice`: the accepted values. */
  choices?: readonly string[];
  /** One line: what it does. */
  meaning: string;
}

const MiB = 1_048_576;
const HOUR_MS = 3_600_000;
const MAX_RATE = 1_000_000;

/** The wire formats the installed exporter can send (OTLP/HTTP receivers accept JSON beside protobuf). */
export const OTLP_PROTOCOLS = ["http/json", "http/protobuf"] as const;

export const SETTINGS = {
  // Node and cluster
  PORT: { group: "Node and cluster", type: "integer", default: "3000", min: 0, max: 65535, meaning: "TCP port the node serves HTTP (or HTTPS) on" },
  HOST: { group: "Node and cluster", type: "text", default: "0.0.0.0", meaning: "Address the node listens on" },
  NATS_URL: {
    group: "Node and cluster",
    type: "list",
    default: "nats://127.0.0.1:4222",
    meaning:
      "NATS servers (nats://host:port), comma-separated; nats://user:password@host or nats://token@host authenticates (taken out of the URL, never logged)",
  },
  // One way of authenticating to NATS at most (config/natsConfig.ts): two stop the node at start.
  NATS_USER: { group: "Node and cluster", type: "text", shown: "unset", meaning: "User name for NATS, with NATS_PASSWORD" },
  NATS_PASSWORD: { group: "Node and cluster", type: "secret", shown: "unset", meaning: "Password of NATS_USER" },
  NATS_TOKEN: { group: "Node and cluster", type: "secret", shown: "unset", meaning: "Token for a NATS server that authenticates by token" },
  NATS_CREDS_FILE: {
    group: "Node and cluster",
    type: "file",
    shown: "unset",
    meaning: "NATS credentials file: a user JWT and its NKey seed, as nsc writes it",
  },
  NATS_NKEY_SEED_FILE: {
    group: "Node and cluster",
    type: "file",
    shown: "unset",
    meaning: "File holding an NKey user seed (SU...) whose public key the NATS server knows",
  },
  NATS_TLS_CA_FILE: {
    group: "Node and cluster",
    type: "file",
    shown: "the system's CAs",
    meaning: "PEM CA certificate(s) the NATS servers' certificates must be signed by (a server requiring TLS always gets TLS)",
  },
  NATS_TLS_CERT_FILE: {
    group: "Node and cluster",
    type: "file",
    shown: "unset",
    meaning: "PEM client certificate for NATS servers that verify clients; with NATS_TLS_KEY_FILE",
  },
  NATS_TLS_KEY_FILE: { group: "Node and cluster", type: "file", shown: "unset", meaning: "PEM private key of NATS_TLS_CERT_FILE" },
  NODE_ID: {
    group: "Node and cluster",
    type: "text",
    shown: "host name-PORT, e.g. web1-3000",
    meaning:
      "This node's name in the cluster and in NATS subjects ([A-Za-z0-9_-], at most 64); unique: a node started with the NODE_ID of a live one stops (exit 2)",
  },
  ADVERTISED_HOST: {
    group: "Node and cluster",
    type: "text",
    shown: "HOST if one address, else the host name",
    meaning: "Host name other nodes and operators reach this node by (shown in /cluster)",
  },
  TOUCHLINE_NAMESPACE: {
    group: "Node and cluster",
    type: "text",
    default: "touchline",
    meaning: "Prefix of every NATS subject, stream and bucket ([a-z][a-z0-9_], at most 32), so clusters can share a server",
  },
  JETSTREAM_REPLICAS: {
    group: "Node and cluster",
    type: "integer",
    default: "1",
    min: 1,
    max: 5,
    meaning: "Copies of the event log and buckets (3 on a three-server NATS cluster; set when the stream is first created)",
  },
  RETENTION: {
    group: "Node and cluster",
    type: "duration",
    default: "24h",
    unit: "ms",
    min: 60_000,
    meaning:
      'How long the event log keeps events (and resumes can reach back). The cluster\'s one log takes a new value once no other live node runs with another (docs/operators.md, "Settings every node shares")',
  },
  MEMBERSHIP_RENEW_MS: {
    group: "Node and cluster",
    type: "duration",
    default: "1s",
    unit: "ms",
    min: 100,
    meaning: "How often a node renews its membership entry",
  },
  MEMBERSHIP_TTL: {
    group: "Node and cluster",
    type: "duration",
    default: "5s",
    unit: "ms",
    meaning: "A node not renewed for this long (at least twice MEMBERSHIP_RENEW_MS) is dead and its matches move",
  },
  ACTOR_IDLE: {
    group: "Node and cluster",
    type: "duration",
    default: "30s",
    unit: "ms",
    min: 100,
    meaning: "A match with no viewers on this node and not owned by it stops after this long",
  },
  INDEX_REFRESH: {
    group: "Node and cluster",
    type: "duration",
    default: "5s",
    unit: "ms",
    min: 1000,
    max: 60_000,
    meaning:
      "A change to a listed match (state, last id) reaches the other nodes' GET /matches within this long; new and ended matches within about a second. Each busy match costs the log one write per this, besides its events",
  },

  // Streams
  HEARTBEAT_MS: {
    group: "Streams",
    type: "duration",
    default: "15s",
    unit: "ms",
    min: 100,
    max: HOUR_MS,
    meaning: "An idle stream gets a keep-alive comment this often",
  },
  RETRY_MS: {
    group: "Streams",
    type: "duration",
    default: "1s",
    unit: "ms",
    min: 0,
    max: HOUR_MS,
    meaning: "Reconnect delay sent to clients (retry:, with ±50% jitter)",
  },
  MAX_CONNECTIONS: {
    group: "Streams",
    type: "integer",
    shown: "open-file limit − 1024, at least 1000",
    unit: "streams",
    min: 1,
    meaning: "Streams and long polls this node holds at once; past it new ones are refused (503)",
  },
  MAX_MATCHES_PER_STREAM: {
    group: "Streams",
    type: "integer",
    default: "64",
    unit: "matches",
    min: 1,
    max: 1000,
    meaning: "Matches one multiplexed stream may follow (its longest resume must fit Bun's head limit, see BUN_OPTIONS)",
  },
  CLIENT_BUFFER_BYTES: {
    group: "Streams",
    type: "integer",
    default: String(MiB),
    unit: "bytes",
    min: 1024,
    meaning: "Unsent bytes a stream may hold before it counts as slow; also bounds one resume",
  },
  SLOW_CLIENT_GRACE: {
    group: "Streams",
    type: "duration",
    default: "3s",
    unit: "ms",
    min: 0,
    meaning:
      "A stream over CLIENT_BUFFER_BYTES this long is cut (at once past the ceiling: 4x it, at least it plus MAX_BODY_BYTES and 64 KiB); it resumes by id",
  },
  POLL_WAIT: { group: "Streams", type: "duration", default: "25s", unit: "ms", min: 0, meaning: "Longest wait of a long poll" },
  MAX_STREAM_AGE: {
    group: "Streams",
    type: "duration",
    default: "off",
    unit: "ms",
    min: 10_000,
    meaning: "Streams older than this (±20%) close to resume elsewhere, rebalancing nodes; off or 0: never",
  },
  GC_AFTER_STREAM_CHURN: {
    group: "Streams",
    type: "integer",
    default: "1000",
    unit: "opens and closes",
    min: 0,
    meaning: "After this many stream opens and closes then half a second without any, one garbage collection (concurrent with the node's work); 0: off",
  },

  // Memory
  WINDOW_EVENTS: {
    group: "Memory",
    type: "integer",
    default: "2000",
    unit: "events",
    min: 16,
    max: 1_000_000,
    meaning: "Recent events each match keeps in memory to serve resumes without JetStream",
  },
  WINDOW_BYTES: {
    group: "Memory",
    type: "integer",
    default: String(MiB),
    unit: "bytes",
    min: 1024,
    meaning: "Bytes of encoded events each match keeps in memory (whichever bound comes first)",
  },
  WINDOW_BUDGET_BYTES: {
    group: "Memory",
    type: "integer",
    default: String(256 * MiB),
    unit: "bytes",
    meaning: "Bytes all match windows share (at least WINDOW_BYTES); past it the oldest events of all windows go first",
  },

  // Publishing
  MAX_BODY_BYTES: {
    group: "Publishing",
    type: "integer",
    default: String(64 * 1024),
    unit: "bytes",
    min: 256,
    max: 16 * MiB,
    meaning: "Largest body of one publish",
  },
  MAX_STATE_BYTES: {
    group: "Publishing",
    type: "integer",
    default: String(64 * 1024),
    unit: "bytes",
    min: 1024,
    // An index entry holds the state and must fit in one NATS message (1 MiB by default).
    max: 512 * 1024,
    meaning: "Largest state of one match (its JSON); a publish whose state patch would pass it is refused (413). The same on every node",
  },
  BATCH_MAX_ITEMS: {
    group: "Publishing",
    type: "integer",
    default: "1000",
    unit: "events",
    min: 1,
    max: 100_000,
    meaning: "Most events in one batch publish (POST /events)",
  },
  BATCH_MAX_BYTES: {
    group: "Publishing",
    type: "integer",
    default: String(MiB),
    unit: "bytes",
    min: 256,
    max: 64 * MiB,
    meaning: "Largest body of one batch publish (the whole JSON array)",
  },

  // Shutdown
  DRAIN_NOTICE: {
    group: "Shutdown",
    type: "duration",
    default: "1s",
    unit: "ms",
    min: 0,
    meaning: "After SIGTERM, /readyz says 503 this long while streams stay, so balancers notice first",
  },
  DRAIN: {
    group: "Shutdown",
    type: "duration",
    default: "5s",
    unit: "ms",
    min: 0,
    meaning: "Then the node's streams are closed spread over this long, so their clients do not reconnect at once",
  },

  // Security
  TOUCHLINE_JWT_SECRET: {
    group: "Security",
    type: "secret",
    meaning: "HS256 key of publish and subscribe tokens (at least 16 characters); with no key at all, anyone may publish",
  },
  TOUCHLINE_JWT_PUBLIC_KEY_FILE: { group: "Security", type: "file", meaning: "PEM (SPKI) public key for RS256/ES256 tokens, beside or instead of the secret" },
  TOUCHLINE_JWT_ISSUER: { group: "Security", type: "text", shown: "unset: not checked", meaning: "A token's iss must be this" },
  TOUCHLINE_JWT_AUDIENCE: { group: "Security", type: "text", shown: "unset: not checked", meaning: "A token's aud must include this" },
  CORS_ORIGINS: {
    group: "Security",
    type: "list",
    shown: "unset: same origin only",
    meaning: "Exact origins (https://host[:port]) allowed cross-origin with credentials, or * for any (public matches only)",
  },
  TLS_CERT_FILE: {
    group: "Security",
    type: "file",
    shown: "unset: plain HTTP",
    meaning: "PEM certificate (chain): the node serves HTTPS; set with TLS_KEY_FILE",
  },
  TLS_KEY_FILE: { group: "Security", type: "file", shown: "unset: plain HTTP", meaning: "PEM private key of TLS_CERT_FILE" },
  HTTP2: {
    group: "Security",
    type: "flag",
    default: "false",
    meaning: "true (with TLS only): serve HTTP/2 (ALPN h2) beside HTTP/1.1; off by default, see docs/security.md, HTTP/2",
  },

  // Abuse limits (a rate or count of 0 turns that limit off)
  MAX_STREAMS_PER_ADDRESS: {
    group: "Abuse limits",
    type: "integer",
    default: String(LIMIT_DEFAULTS.maxStreamsPerAddress),
    unit: "streams",
    min: 0,
    meaning: "Streams and long polls one client address may hold open on a node; 0: no limit",
  },
  STREAM_RATE_PER_ADDRESS: {
    group: "Abuse limits",
    type: "integer",
    default: String(LIMIT_DEFAULTS.streamRatePerAddress),
    unit: "per second",
    min: 0,
    max: MAX_RATE,
    meaning: "New streams a second per client address; 0: no limit",
  },
  STREAM_BURST_PER_ADDRESS: {
    group: "Abuse limits",
    type: "integer",
    shown: `${LIMIT_DEFAULTS.streamBurstPerAddress}, at least the rate`,
    unit: "streams",
    min: 1,
    max: MAX_RATE,
    meaning: "Burst of new streams allowed above STREAM_RATE_PER_ADDRESS",
  },
  PUBLISH_RATE: {
    group: "Abuse limits",
    type: "integer",
    default: String(LIMIT_DEFAULTS.publishRate),
    unit: "per second",
    min: 0,
    max: MAX_RATE,
    meaning: "Publishes a second per token (per address when tokens are off or absent); 0: no limit",
  },
  PUBLISH_BURST: {
    group: "Abuse limits",
    type: "integer",
    shown: `${LIMIT_DEFAULTS.publishBurst}, at least the rate`,
    unit: "publishes",
    min: 1,
    max: MAX_RATE,
    meaning: "Burst of publishes allowed above PUBLISH_RATE",
  },
  MAX_HEADER_BYTES: {
    group: "Abuse limits",
    type: "integer",
    default: String(LIMIT_DEFAULTS.maxHeaderBytes),
    unit: "bytes",
    min: 1024,
    max: MiB,
    meaning: "Request line plus headers (stream requests get room for their longest resume)",
  },
  TRUST_PROXY: {
    group: "Abuse limits",
    type: "text",
    default: "false",
    meaning: "Who may name the client: true or N (nearest N hops are proxies), or addresses, CIDR blocks, loopback, private",
  },
  PROXY_PROTOCOL: {
    group: "Abuse limits",
    type: "flag",
    default: "false",
    meaning: "Read the PROXY protocol header (v1/v2) an L4 balancer named in TRUST_PROXY sends",
  },
  LIMITS_EXEMPT: {
    group: "Abuse limits",
    type: "list",
    default: LIMIT_DEFAULTS.exempt,
    meaning: "Addresses (or CIDR, loopback, private) the per-address limits leave alone; none for none",
  },
  LIMITER_MAX_KEYS: {
    group: "Abuse limits",
    type: "integer",
    default: String(LIMIT_DEFAULTS.maxTrackedKeys),
    unit: "keys",
    min: 100,
    max: 10_000_000,
    meaning: "Addresses or tokens each rate limiter remembers",
  },

  // Logs and traces (OpenTelemetry's standard variables, as the node reads them)
  LOG_LEVEL: {
    group: "Logs and traces",
    type: "choice",
    default: "info",
    choices: LOG_LEVELS,
    meaning: `Least level of the JSON log lines on stdout: ${LOG_LEVELS.join(", ")}`,
  },
  EVENT_LOOP_LAG_WINDOW_MS: {
    group: "Logs and traces",
    type: "duration",
    default: "15s",
    unit: "ms",
    min: 100,
    max: HOUR_MS,
    meaning: "touchline_event_loop_lag_seconds shows the worst probe (every 100 ms) of this window: about your scrape interval",
  },
  OTEL_SERVICE_NAME: { group: "Logs and traces", type: "text", default: "touchline", meaning: "service.name of this node's spans" },
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    group: "Logs and traces",
    type: "url",
    shown: "unset: no tracing",
    meaning: "OTLP/HTTP collector spans go to (/v1/traces is appended)",
  },
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {
    group: "Logs and traces",
    type: "url",
    shown: "unset: no tracing",
    meaning: "URL spans go to, used as is (wins over OTEL_EXPORTER_OTLP_ENDPOINT)",
  },
  OTEL_EXPORTER_OTLP_PROTOCOL: {
    group: "Logs and traces",
    type: "choice",
    default: "http/json",
    choices: OTLP_PROTOCOLS,
    meaning: "http/json or http/protobuf; spans are sent as OTLP/HTTP JSON either way",
  },
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: {
    group: "Logs and traces",
    type: "choice",
    shown: "OTEL_EXPORTER_OTLP_PROTOCOL",
    choices: OTLP_PROTOCOLS,
    meaning: "The same for traces only (wins over OTEL_EXPORTER_OTLP_PROTOCOL)",
  },
  OTEL_TRACES_SAMPLER: {
    group: "Logs and traces",
    type: "choice",
    default: "parentbased_always_on",
    choices: SAMPLER_NAMES,
    meaning: `Which traces are kept: ${SAMPLER_NAMES.join(", ")}`,
  },
  OTEL_TRACES_SAMPLER_ARG: {
    group: "Logs and traces",
    type: "number",
    default: "1",
    min: 0,
    max: 1,
    meaning: "Fraction of new traces the ratio samplers keep",
  },
  OTEL_TRACES_EXPORTER: {
    group: "Logs and traces",
    type: "choice",
    default: "otlp",
    choices: ["otlp", "none"],
    meaning: "none switches tracing off with an endpoint set",
  },
  OTEL_SDK_DISABLED: {
    group: "Logs and traces",
    type: "flag",
    default: "false",
    meaning: "true switches tracing off with an endpoint set (true or false only)",
  },
  OTEL_BSP_SCHEDULE_DELAY: {
    group: "Logs and traces",
    type: "duration",
    shown: "the SDK's (5s)",
    unit: "ms",
    min: 1,
    meaning: "Spans are sent in batches at most this far apart",
  },
  OTEL_BSP_EXPORT_TIMEOUT: {
    group: "Logs and traces",
    type: "duration",
    shown: "the SDK's (30s)",
    unit: "ms",
    min: 1,
    meaning: "Longest wait for one batch of spans to be sent",
  },
  OTEL_BSP_MAX_QUEUE_SIZE: {
    group: "Logs and traces",
    type: "integer",
    shown: "the SDK's (2048)",
    unit: "spans",
    min: 1,
    meaning: "Spans waiting to be sent at most; more are dropped",
  },
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: {
    group: "Logs and traces",
    type: "integer",
    shown: "the SDK's (512)",
    unit: "spans",
    min: 1,
    meaning: "Spans in one batch at most",
  },

  // Runtime
  BUN_OPTIONS: { group: "Runtime", type: "text", meaning: "Bun's own options; the node reads --max-http-header-size from it to check MAX_MATCHES_PER_STREAM" },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

export function settingSpec(name: SettingName): SettingSpec {
  return SETTINGS[name];
}

export function isSetting(name: string): name is SettingName {
  return Object.hasOwn(SETTINGS, name);
}

/** The default as `--help` and docs/operators.md print it. */
export function shownDefault(spec: SettingSpec): string {
  return spec.shown ?? spec.default ?? "unset";
}

/**
 * OpenTelemetry's own variables, read by its libraries rather than by the node (the exporter's headers,
 * timeout, compression and certificates; the resource attributes): documented by reference in
 * docs/operators.md ("Configuration"), never warned about.
 */
export const OTEL_LIBRARY_VARIABLES: readonly string[] = [
  "OTEL_RESOURCE_ATTRIBUTES",
  ...["", "TRACES_"].flatMap((signal) =>
    ["HEADERS", "TIMEOUT", "COMPRESSION", "CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"].map((v) => `OTEL_EXPORTER_OTLP_${signal}${v}`),
  ),
];

/** Variables of Touchline's other programs (the command line, the demo producer, clients), not of the node: never warned about. */
export const TOOL_VARIABLES: readonly string[] = ["TOUCHLINE_URL", "TOUCHLINE_TOKEN"];
