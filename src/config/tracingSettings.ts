/**
 * The standard OpenTelemetry variables that decide whether and how this node exports traces (declared
 * in settings.ts, group "Logs and traces"). Pure: it reads only the env object it is given.
 *
 * sdk-trace 3 reads none of these itself (the OTLP exporter reads its own endpoint, headers, timeout
 * and compression, and the resource detectors OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES), so the
 * sampler and batch settings are parsed here. A bad value throws a ConfigError naming the variable,
 * like the rest of the configuration.
 */
import { ConfigError } from "./configError.ts";
import { parseDuration } from "./duration.ts";
import { OTLP_PROTOCOLS, SETTINGS, type SettingName } from "./settings.ts";
import { SAMPLER_NAMES, type BatchSettings, type SamplerName, type TracingEnv } from "../telemetry/tracingOptions.ts";

export type { BatchSettings, SamplerName, TracingEnv } from "../telemetry/tracingOptions.ts";

export type Env = Record<string, string | undefined>;

/** The specification's default: follow the caller's decision, sample every new trace. */
const DEFAULT_SAMPLER: SamplerName = SETTINGS.OTEL_TRACES_SAMPLER.default;
const DEFAULT_SAMPLER_RATIO = Number(SETTINGS.OTEL_TRACES_SAMPLER_ARG.default);

const BATCH_DURATIONS: [keyof BatchSettings, SettingName][] = [
  ["scheduledDelayMillis", "OTEL_BSP_SCHEDULE_DELAY"],
  ["exportTimeoutMillis", "OTEL_BSP_EXPORT_TIMEOUT"],
];
const BATCH_COUNTS: [keyof BatchSettings, SettingName][] = [
  ["maxQueueSize", "OTEL_BSP_MAX_QUEUE_SIZE"],
  ["maxExportBatchSize", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
];

function value(env: Env, name: SettingName): string | undefined {
  const text = env[name]?.trim();
  return text === "" ? undefined : text;
}

function fail(name: SettingName, expected: string, got: string | undefined): never {
  throw new ConfigError(name, `must be ${expected}; got ${JSON.stringify(got)}`);
}

/** OTel's booleans are true or false only (case-insensitive). */
function parseBoolean(env: Env, name: SettingName): boolean {
  const text = value(env, name)?.toLowerCase();
  if (text === undefined || text === "false") return false;
  if (text === "true") return true;
  return fail(name, "true or false", env[name]);
}

function parseUrl(env: Env, name: SettingName): string | undefined {
  const text = value(env, name);
  if (text === undefined) return undefined;
  try {
    const url = new URL(text);
    if (url.protocol === "http:" || url.protocol === "https:") return text;
  } catch {
    // reported below
  }
  return fail(name, "an http(s) URL", text);
}

function parsePositiveInteger(env: Env, name: SettingName): number | undefined {
  const text = value(env, name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) fail(name, "a positive integer", text);
  return n;
}

/** A time: a bare number of milliseconds as the specification says, or `5s`, `500ms`... */
function parsePositiveDuration(env: Env, name: SettingName): number | undefined {
  const text = value(env, name);
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) fail(name, "a positive duration like 5s or 500 (ms)", text);
  return ms;
}

function parseSampler(env: Env): { sampler: SamplerName; samplerRatio: number } {
  const name = value(env, "OTEL_TRACES_SAMPLER")?.toLowerCase() ?? DEFAULT_SAMPLER;
  if (!(SAMPLER_NAMES as readonly string[]).includes(name)) {
    fail("OTEL_TRACES_SAMPLER", `one of ${SAMPLER_NAMES.join(", ")}`, env.OTEL_TRACES_SAMPLER);
  }
  const sampler = name as SamplerName;
  if (!sampler.endsWith("traceidratio")) return { sampler, samplerRatio: DEFAULT_SAMPLER_RATIO };
  const arg = value(env, "OTEL_TRACES_SAMPLER_ARG");
  if (arg === undefined) return { sampler, samplerRatio: DEFAULT_SAMPLER_RATIO };
  const ratio = Number(arg);
  if (!(ratio >= 0 && ratio <= 1)) fail("OTEL_TRACES_SAMPLER_ARG", "a number from 0 to 1", arg);
  return { sampler, samplerRatio: ratio };
}

function checkExporter(env: Env): boolean {
  const list = value(env, "OTEL_TRACES_EXPORTER");
  if (list === undefined) return true;
  const names = list.split(",").map((s) => s.trim().toLowerCase());
  if (names.includes("none")) return false;
  if (names.some((n) => n !== "otlp")) fail("OTEL_TRACES_EXPORTER", "otlp or none", list);
  return true;
}

function checkProtocol(env: Env): void {
  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] as const) {
    const protocol = value(env, name);
    if (protocol === undefined) continue;
    if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) {
      fail(name, `${OTLP_PROTOCOLS.join(" or ")} (spans are sent as OTLP/HTTP JSON)`, protocol);
    }
    return; // the signal-specific variable wins
  }
}

export function readTracingEnv(env: Env): TracingEnv {
  if (parseBoolean(env, "OTEL_SDK_DISABLED")) return { enabled: false, reason: "OTEL_SDK_DISABLED=true" };
  if (!checkExporter(env)) return { enabled: false, reason: "OTEL_TRACES_EXPORTER=none" };
  const specific = parseUrl(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const general = parseUrl(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
  if (specific === undefined && general === undefined) {
    return { enabled: false, reason: "no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" };
  }
  checkProtocol(env);
  // Same rule as the exporter: the signal-specific URL is used as is, the general one gets /v1/traces.
  const endpoint = specific ?? `${(general as string).replace(/\/+$/, "")}/v1/traces`;

  const batch: BatchSettings = {};
  for (const [key, name] of BATCH_DURATIONS) {
    const ms = parsePositiveDuration(env, name);
    if (ms !== undefined) batch[key] = ms;
  }
  for (const [key, name] of BATCH_COUNTS) {
    const n = parsePositiveInteger(env, name);
    if (n !== undefined) batch[key] = n;
  }
  return { enabled: true, endpoint, ...parseSampler(env), batch };
}
