/**
 * A strict parser for the Prometheus text exposition format 0.0.4, used by tests to check that
 * `/metrics` is well formed (what Prometheus itself would accept) and to read values out of it.
 * It throws on anything malformed, naming the line.
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";
export type SampleLabels = Record<string, string>;

export interface Sample {
  name: string;
  labels: SampleLabels;
  value: number;
  timestamp?: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string | undefined;
  samples: Sample[];
}

export type ParsedMetrics = Map<string, MetricFamily>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const TIMESTAMP = /^-?\d+$/;
const TYPES: readonly MetricType[] = ["counter", "gauge", "histogram", "summary", "untyped"];
const SUFFIXES_BY_TYPE: Partial<Record<MetricType, readonly string[]>> = {
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["_sum", "_count"],
};
const BUCKET_LABEL = "le";
const QUANTILE_LABEL = "quantile";

/** Families that had a TYPE line (an explicit `untyped` counts), to refuse a second one. */
const explicitlyTyped = new WeakSet<MetricFamily>();

class ParseError extends Error {
  constructor(line: number, message: string, text: string) {
    super(`prometheus text line ${line}: ${message}: ${JSON.stringify(text)}`);
  }
}

export function parsePrometheus(text: string): ParsedMetrics {
  if (text !== "" && !text.endsWith("\n")) throw new Error("prometheus text must end with a line feed");
  const families: ParsedMetrics = new Map();
  const finished = new Set<string>();
  let current: MetricFamily | undefined;

  /** Lines of one family must be contiguous: once another family starts, it is closed. */
  const enter = (name: string, lineNo: number, line: string): MetricFamily => {
    if (current?.name === name) return current;
    if (finished.has(name)) throw new ParseError(lineNo, `family ${name} is not contiguous`, line);
    if (current) finished.add(current.name);
    current = { name, type: "untyped", help: undefined, samples: [] };
    families.set(name, current);
    return current;
  };

  const lines = text.split("\n");
  lines.pop(); // the empty string after the final line feed
  lines.forEach((line, index) => {
    const lineNo = index + 1;
    if (line.includes("\r")) throw new ParseError(lineNo, "carriage return", line);
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      parseComment(line, lineNo, enter);
      return;
    }
    const sample = parseSample(line, lineNo);
    const familyName = familyOf(sample.name, current);
    const family = enter(familyName, lineNo, line);
    checkSampleFits(family, sample, lineNo, line);
    family.samples.push(sample);
  });
  for (const family of families.values()) checkFamily(family);
  return families;
}

function parseComment(line: string, lineNo: number, enter: (name: string, lineNo: number, line: string) => MetricFamily): void {
  const match = /^#[ \t]+(HELP|TYPE)[ \t]+([^ \t]+)(?:[ \t](.*))?$/.exec(line);
  if (!match) return; // any other comment is allowed and ignored
  const [, keyword, name = "", rest = ""] = match;
  if (!new RegExp(`${METRIC_NAME.source}$`).test(name)) throw new ParseError(lineNo, "invalid metric name", line);
  const family = enter(name, lineNo, line);
  if (keyword === "HELP") {
    if (family.help !== undefined) throw new ParseError(lineNo, "second HELP", line);
    family.help = unescapeText(rest, false, lineNo, line);
    return;
  }
  const type = rest.trim() as MetricType;
  if (!TYPES.includes(type)) throw new ParseError(lineNo, "unknown TYPE", line);
  if (family.samples.length > 0) throw new ParseError(lineNo, "TYPE after samples", line);
  if (explicitlyTyped.has(family)) throw new ParseError(lineNo, "second TYPE", line);
  explicitlyTyped.add(family);
  family.type = type;
}

/** A sample named `x_bucket` belongs to the histogram `x` currently open, and so on. */
function familyOf(sampleName: string, current: MetricFamily | undefined): string {
  if (current) {
    for (const suffix of SUFFIXES_BY_TYPE[current.type] ?? []) {
      if (sampleName === current.name + suffix) return current.name;
    }
  }
  return sampleName;
}

function parseSample(line: string, lineNo: number): Sample {
  const nameMatch = METRIC_NAME.exec(line);
  if (!nameMatch) throw new ParseError(lineNo, "expected a metric name", line);
  const name = nameMatch[0];
  let pos = name.length;
  let labels: SampleLabels = {};
  if (line[pos] === "{") {
    const parsed = parseLabels(line, pos + 1, lineNo);
    labels = parsed.labels;
    pos = parsed.end;
  }
  const rest = line.slice(pos);
  const fields = /^[ \t]+([^ \t]+)(?:[ \t]+([^ \t]+))?[ \t]*$/.exec(rest);
  if (!fields) throw new ParseError(lineNo, 'expected " value [timestamp]" after the name and labels', line);
  const value = parseValue(fields[1] ?? "", lineNo, line);
  const sample: Sample = { name, labels, value };
  if (fields[2] !== undefined) {
    if (!TIMESTAMP.test(fields[2])) throw new ParseError(lineNo, "invalid timestamp", line);
    sample.timestamp = Number(fields[2]);
  }
  return sample;
}

/** Parses `name="value",...}` starting after `{`; returns the labels and the index after `}`. */
function parseLabels(line: string, start: number, lineNo: number): { labels: SampleLabels; end: number } {
  const labels: SampleLabels = {};
  let pos = start;
  const skipBlanks = () => {
    while (line[pos] === " " || line[pos] === "\t") pos++;
  };
  for (;;) {
    skipBlanks();
    if (line[pos] === "}") return { labels, end: pos + 1 };
    const nameMatch = LABEL_NAME.exec(line.slice(pos));
    if (!nameMatch) throw new ParseError(lineNo, `expected a label name at column ${pos + 1}`, line);
    const labelName = nameMatch[0];
    if (Object.hasOwn(labels, labelName)) throw new ParseError(lineNo, `duplicate label ${labelName}`, line);
    pos += labelName.length;
    skipBlanks();
    if (line[pos] !== "=") throw new ParseError(lineNo, `expected = after label ${labelName}`, line);
    pos++;
    skipBlanks();
    if (line[pos] !== '"') throw new ParseError(lineNo, `expected a quoted value for label ${labelName}`, line);
    pos++;
    let raw = "";
    for (;;) {
      const c = line[pos];
      if (c === undefined) throw new ParseError(lineNo, `unterminated value for label ${labelName}`, line);
      if (c === '"') break;
      if (c === "\\") {
        raw += c + (line[pos + 1] ?? "");
        pos += 2;
        continue;
      }
      raw += c;
      pos++;
    }
    pos++; // closing quote
    labels[labelName] = unescapeText(raw, true, lineNo, line);
    skipBlanks();
    if (line[pos] === ",") {
      pos++;
      continue;
    }
    if (line[pos] !== "}") throw new ParseError(lineNo, `expected , or } after label ${labelName}`, line);
  }
}

/** Label values may escape `\\`, `\"` and `\n`; HELP text only `\\` and `\n`. */
function unescapeText(raw: string, quotesEscaped: boolean, lineNo: number, line: string): string {
  return raw.replace(/\\(.?)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    if (c === '"' && quotesEscaped) return '"';
    throw new ParseError(lineNo, `invalid escape \\${c}`, line);
  });
}

function parseValue(text: string, lineNo: number, line: string): number {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!FLOAT.test(text)) throw new ParseError(lineNo, `invalid value ${text}`, line);
  return Number(text);
}

function labelKey(labels: SampleLabels, without?: string): string {
  return Object.keys(labels)
    .filter((k) => k !== without)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(",");
}

function checkSampleFits(family: MetricFamily, sample: Sample, lineNo: number, line: string): void {
  const key = `${sample.name}{${labelKey(sample.labels)}}`;
  if (family.samples.some((s) => `${s.name}{${labelKey(s.labels)}}` === key)) {
    throw new ParseError(lineNo, "duplicate sample", line);
  }
  if (family.type === "counter" && !(sample.value >= 0)) {
    throw new ParseError(lineNo, "counter value must be a non-negative number", line);
  }
  const isBucket = family.type === "histogram" && sample.name === `${family.name}_bucket`;
  if (isBucket !== Object.hasOwn(sample.labels, BUCKET_LABEL) && family.type === "histogram") {
    throw new ParseError(lineNo, `"${BUCKET_LABEL}" label belongs on histogram buckets only`, line);
  }
  if (isBucket && Number.isNaN(parseValue(sample.labels[BUCKET_LABEL] ?? "", lineNo, line))) {
    throw new ParseError(lineNo, "bucket bound is NaN", line);
  }
  if (family.type === "summary" && sample.name === family.name && !Object.hasOwn(sample.labels, QUANTILE_LABEL)) {
    throw new ParseError(lineNo, "summary sample without quantile", line);
  }
}

/** Histograms: cumulative buckets ending with +Inf, which equals _count; _sum and _count present. */
function checkFamily(family: MetricFamily): void {
  if (family.type !== "histogram") return;
  const series = new Map<string, { buckets: { le: number; value: number }[]; sum?: number; count?: number }>();
  for (const s of family.samples) {
    const key = labelKey(s.labels, BUCKET_LABEL);
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (s.name === `${family.name}_bucket`) entry.buckets.push({ le: Number(parseValue(s.labels[BUCKET_LABEL] ?? "", 0, "")), value: s.value });
    else if (s.name === `${family.name}_sum`) entry.sum = s.value;
    else entry.count = s.value;
  }
  for (const [key, entry] of series) {
    const where = `histogram ${family.name}{${key}}`;
    if (entry.sum === undefined || entry.count === undefined) throw new Error(`${where}: missing _sum or _count`);
    const last = entry.buckets.at(-1);
    if (last?.le !== Infinity) throw new Error(`${where}: buckets must end with le="+Inf"`);
    if (last.value !== entry.count) throw new Error(`${where}: +Inf bucket ${last.value} != _count ${entry.count}`);
    for (let i = 1; i < entry.buckets.length; i++) {
      const prev = entry.buckets[i - 1]!;
      const cur = entry.buckets[i]!;
      if (!(cur.le > prev.le)) throw new Error(`${where}: bucket bounds must increase`);
      if (cur.value < prev.value) throw new Error(`${where}: bucket counts must be cumulative`);
    }
  }
}

function sameLabels(a: SampleLabels, b: SampleLabels): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

function* allSamples(parsed: ParsedMetrics, name: string): Generator<Sample> {
  for (const family of parsed.values()) {
    for (const s of family.samples) if (s.name === name) yield s;
  }
}

/** The value of the sample with exactly this name and label set, or undefined if absent. */
export function sampleValue(parsed: ParsedMetrics, name: string, labels: SampleLabels = {}): number | undefined {
  for (const s of allSamples(parsed, name)) if (sameLabels(s.labels, labels)) return s.value;
  return undefined;
}

/** The sum over every sample with this name whose labels include `where` (e.g. all reasons). */
export function sumSamples(parsed: ParsedMetrics, name: string, where: SampleLabels = {}): number {
  let total = 0;
  for (const s of allSamples(parsed, name)) {
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** Families other than the application's own that a process may expose (client-library defaults). */
export const STANDARD_PREFIXES = ["process_"] as const;

/** Units Prometheus asks to be given in base units (seconds, bytes) instead. */
const NON_BASE_UNIT = /_(?:ms|millis|milliseconds|us|micros|microseconds|ns|nanoseconds|minutes|hours|days|kb|kilobytes|mb|megabytes|kib|mib)(?:_|$)/;
/** Words that make a name a duration, which must then be in seconds. */
const DURATION_WORD = /_(?:latency|duration|lag|delay|elapsed|uptime|age|wait|time)(?:_|$)/;
const SECONDS_UNIT = /_seconds(?:_total|_sum|_count|_bucket)?$/;
const SNAKE_CASE = /^[a-z][a-z0-9_]*$/;
const RESERVED_LABEL = /^__/;

/**
 * What Prometheus' naming conventions (and a careful exposition) ask beyond parsing: every family
 * has a HELP and an explicit TYPE, its name carries the application's prefix (or a standard one) in
 * snake case, counters end in `_total` and nothing else does, durations are in `_seconds`, no
 * non-base units, no reserved label names. Returns every problem found (an empty list when none), so
 * a failing test shows them all at once. Histogram buckets are checked by `parsePrometheus` itself.
 */
export function conventionProblems(parsed: ParsedMetrics, prefix: string): string[] {
  const problems: string[] = [];
  for (const family of parsed.values()) {
    const name = family.name;
    const problem = (text: string) => problems.push(`${name}: ${text}`);
    if (family.help === undefined || family.help.trim() === "") problem("no # HELP text");
    if (!explicitlyTyped.has(family) || family.type === "untyped") problem("no # TYPE (or untyped)");
    if (!name.startsWith(prefix) && !STANDARD_PREFIXES.some((p) => name.startsWith(p))) {
      problem(`name lacks the ${prefix} prefix`);
    }
    if (!SNAKE_CASE.test(name)) problem("name is not lower snake case");
    if (family.type === "counter" && !name.endsWith("_total")) problem("counter name must end in _total");
    if (family.type !== "counter" && name.endsWith("_total")) problem(`${family.type} name must not end in _total`);
    if (NON_BASE_UNIT.test(name)) problem("use base units (seconds, bytes)");
    if (DURATION_WORD.test(name) && !SECONDS_UNIT.test(name.replace(/_total$/, ""))) problem("a duration must be in _seconds");
    for (const s of family.samples) {
      for (const label of Object.keys(s.labels)) {
        if (RESERVED_LABEL.test(label)) problem(`label ${label} uses the reserved __ prefix`);
      }
    }
  }
  return problems;
}
