/**
 * JSON-lines logger: one object per line on stdout, ready for any log shipper.
 * `{"ts":"<ISO>","level":"info","node":"<id>","msg":"...", ...fields, "trace_id":"<hex>"}`
 * `trace_id` is the active OpenTelemetry trace, when there is one, so logs join traces.
 * Logging never throws: odd fields (cycles, bigints, throwing getters) are rendered, not fatal.
 */
import { context, isSpanContextValid, trace } from "@opentelemetry/api";
import { toJsonSafe } from "./jsonSafe";

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
type EmittingLevel = Exclude<LogLevel, "silent">;

const DEFAULT_LOG_LEVEL: LogLevel = "info";
const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: Infinity };

/** Keys the logger writes itself; a field with one of these names is kept under `field_<name>`. */
const RESERVED_KEYS = new Set(["ts", "level", "node", "msg", "trace_id"]);
const RESERVED_KEY_PREFIX = "field_";

export type LogFields = Record<string, unknown>;
export type LogMethod = (msg: string, fields?: LogFields) => void;

export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  /** A logger that adds `fields` to every line (the call's own fields win on a clash). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  nodeId: string;
  level: LogLevel;
  /** Where each finished line (with its trailing newline) goes; stdout by default. */
  write?: (line: string) => void;
}

/**
 * Reads a level as given in `LOG_LEVEL` (case-insensitive); unset or empty means `info`.
 * Throws naming the variable on anything else, so a typo stops the node at start-up.
 */
export function parseLogLevel(value: string | undefined, variable = "LOG_LEVEL"): LogLevel {
  const text = value?.trim().toLowerCase() ?? "";
  if (text === "") return DEFAULT_LOG_LEVEL;
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  throw new Error(`${variable} must be one of ${LOG_LEVELS.join(", ")}; got ${JSON.stringify(value)}`);
}

function writeToStdout(line: string): void {
  process.stdout.write(line);
}

function activeTraceId(): string | undefined {
  const spanContext = trace.getSpanContext(context.active());
  return spanContext && isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

function describe(value: unknown): string {
  try {
    return String(value);
  } catch {
    return "[unprintable]";
  }
}

function formatLine(level: EmittingLevel, nodeId: string, msg: string, bound: LogFields | undefined, fields: LogFields | undefined): string {
  const record: Record<string, unknown> = { ts: new Date().toISOString(), level, node: nodeId, msg: describe(msg) };
  try {
    for (const source of [bound, fields]) {
      if (source === undefined || source === null) continue;
      for (const key of Object.keys(source)) {
        const safe = toJsonSafe(source[key]);
        record[RESERVED_KEYS.has(key) ? RESERVED_KEY_PREFIX + key : key] = safe;
      }
    }
  } catch (err) {
    // Only a hostile object (a throwing Proxy) gets here; keep the message and say why fields are gone.
    record.log_error = `fields dropped: ${describe(err)}`;
  }
  const traceId = activeTraceId();
  if (traceId !== undefined) record.trace_id = traceId;
  return `${JSON.stringify(record)}\n`;
}

export function createLogger(options: LoggerOptions): Logger {
  return build(options, undefined);
}

function build(options: LoggerOptions, bound: LogFields | undefined): Logger {
  const { nodeId, level } = options;
  const write = options.write ?? writeToStdout;
  const threshold = LEVEL_RANK[level] ?? LEVEL_RANK[DEFAULT_LOG_LEVEL];
  const noop: LogMethod = () => {};

  const method = (lineLevel: EmittingLevel): LogMethod => {
    if (LEVEL_RANK[lineLevel] < threshold) return noop;
    return (msg, fields) => {
      try {
        write(formatLine(lineLevel, nodeId, msg, bound, fields));
      } catch {
        // A closed stdout (EPIPE) or a failing sink must not take the node down with it.
      }
    };
  };

  return {
    debug: method("debug"),
    info: method("info"),
    warn: method("warn"),
    error: method("error"),
    child: (fields) => build(options, { ...bound, ...fields }),
  };
}
