/**
 * A small Prometheus registry with no dependency.
 *
 * Hot path: `inc()` / `observe()` run once per delivered event, so they only touch numbers
 * already allocated. Labelled series are resolved once with `labels()` (which returns the same
 * cached child every time) and kept by the caller; every string the exposition needs is built
 * when the series is created, not when it is updated.
 */
import { LABEL_NAME_PATTERN, METRIC_NAME_PATTERN, RESERVED_LABEL_PREFIX, escapeHelp, formatLabelPairs, formatSampleValue } from "./promText";

export { PROMETHEUS_CONTENT_TYPE } from "./promText";

export type Labels = Record<string, string>;

export interface CounterChild {
  inc(by?: number): void;
}
export interface Counter extends CounterChild {
  labels(l: Labels): CounterChild;
}
export interface GaugeChild {
  set(v: number): void;
  inc(by?: number): void;
  dec(by?: number): void;
}
export interface Gauge extends GaugeChild {
  labels(l: Labels): GaugeChild;
}
export interface HistogramChild {
  /** Records `v`, `times` times over (n deliveries of one event share its latency). */
  observe(v: number, times?: number): void;
}
export interface Histogram extends HistogramChild {
  labels(l: Labels): HistogramChild;
}

type MetricType = "counter" | "gauge" | "histogram";

interface Family {
  render(out: string[]): void;
}

/** Label that carries a histogram bucket's upper bound; users may not declare it. */
const BUCKET_LABEL = "le";
const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"] as const;

function familyHeader(name: string, help: string, type: MetricType): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}`;
}

function braced(labelPairs: string): string {
  return labelPairs === "" ? "" : `{${labelPairs}}`;
}

/**
 * The series of one metric, one per distinct label set. Lookups walk a tree of maps keyed by
 * each label value in declaration order, so resolving an existing child allocates nothing.
 */
class SeriesSet<C> {
  readonly all: C[] = [];
  readonly unlabelled: C | undefined;
  private readonly tree = new Map<string, unknown>();

  constructor(
    private readonly metric: string,
    private readonly labelNames: readonly string[],
    private readonly create: (labelPairs: string) => C,
  ) {
    if (labelNames.length === 0) {
      this.unlabelled = create("");
      this.all.push(this.unlabelled);
    }
  }

  /** The unlabelled series; a labelled metric has none, and updating it bare is a bug. */
  bare(): C {
    if (this.unlabelled === undefined) {
      throw new Error(`metric ${this.metric} has labels (${this.labelNames.join(", ")}): use labels()`);
    }
    return this.unlabelled;
  }

  get(labels: Labels): C {
    this.check(labels);
    const names = this.labelNames;
    if (names.length === 0) return this.unlabelled as C;
    let node = this.tree;
    const last = names.length - 1;
    for (let i = 0; i < last; i++) {
      const value = labels[names[i] as string] as string;
      let next = node.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(value, next);
      }
      node = next;
    }
    const leafValue = labels[names[last] as string] as string;
    let child = node.get(leafValue) as C | undefined;
    if (child === undefined) {
      const values = names.map((n) => labels[n] as string);
      child = this.create(formatLabelPairs(names, values));
      node.set(leafValue, child);
      this.all.push(child);
    }
    return child;
  }

  /** Exactly the declared label names, each with a string value. Allocation-free. */
  private check(labels: Labels): void {
    let count = 0;
    for (const key in labels) {
      if (Object.hasOwn(labels, key)) count++;
    }
    let valid = count === this.labelNames.length;
    for (let i = 0; valid && i < this.labelNames.length; i++) {
      valid = typeof labels[this.labelNames[i] as string] === "string";
    }
    if (!valid) {
      throw new Error(`metric ${this.metric} takes labels {${this.labelNames.join(", ")}}, got {${Object.keys(labels).join(", ")}}`);
    }
  }
}

class CounterSeries implements CounterChild {
  value = 0;
  constructor(readonly prefix: string) {}
  inc(by = 1): void {
    // Written as a negated comparison so NaN is rejected too.
    if (!(by >= 0)) throw new RangeError(`counter increment must be >= 0, got ${by}`);
    this.value += by;
  }
}

class CounterFamily implements Counter, Family {
  private readonly series: SeriesSet<CounterSeries>;
  private readonly header: string;

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.header = familyHeader(name, help, "counter");
    this.series = new SeriesSet(name, labelNames, (pairs) => new CounterSeries(`${name}${braced(pairs)} `));
  }
  inc(by = 1): void {
    this.series.bare().inc(by);
  }
  labels(l: Labels): CounterChild {
    return this.series.get(l);
  }
  render(out: string[]): void {
    out.push(this.header);
    for (const s of this.series.all) out.push(s.prefix + formatSampleValue(s.value));
  }
}

class GaugeSeries implements GaugeChild {
  value = 0;
  constructor(readonly prefix: string) {}
  set(v: number): void {
    this.value = v;
  }
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
}

class GaugeFamily implements Gauge, Family {
  private readonly series: SeriesSet<GaugeSeries>;
  private readonly header: string;

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.header = familyHeader(name, help, "gauge");
    this.series = new SeriesSet(name, labelNames, (pairs) => new GaugeSeries(`${name}${braced(pairs)} `));
  }
  set(v: number): void {
    this.series.bare().set(v);
  }
  inc(by = 1): void {
    this.series.bare().inc(by);
  }
  dec(by = 1): void {
    this.series.bare().dec(by);
  }
  labels(l: Labels): GaugeChild {
    return this.series.get(l);
  }
  render(out: string[]): void {
    out.push(this.header);
    for (const s of this.series.all) out.push(s.prefix + formatSampleValue(s.value));
  }
}

/** One unlabelled series whose value is read at scrape time (a gauge, or a counter kept elsewhere). */
class ReadAtScrapeFamily implements Family {
  private readonly header: string;
  constructor(
    private readonly name: string,
    help: string,
    type: "gauge" | "counter",
    private readonly read: () => number,
  ) {
    this.header = familyHeader(name, help, type);
  }
  render(out: string[]): void {
    let value: number;
    try {
      value = this.read();
    } catch {
      // A failing reader must not take the whole /metrics page down; NaN shows it failed.
      value = NaN;
    }
    out.push(this.header, `${this.name} ${formatSampleValue(typeof value === "number" ? value : NaN)}`);
  }
}

class HistogramSeries implements HistogramChild {
  /** Observations per bucket, not cumulative; the `+Inf` bucket is `count`. */
  readonly bucketCounts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly upperBounds: Float64Array,
    /** `name_bucket{...,le="x"} ` for each finite bound, then the `+Inf` one. */
    readonly bucketPrefixes: readonly string[],
    readonly sumPrefix: string,
    readonly countPrefix: string,
  ) {
    this.bucketCounts = new Float64Array(upperBounds.length);
  }

  observe(v: number, times = 1): void {
    // NaN belongs to no bucket and would poison the sum for good; it is dropped.
    if (Number.isNaN(v)) return;
    if (!(times >= 0)) throw new RangeError(`histogram observation count must be >= 0, got ${times}`);
    const bounds = this.upperBounds;
    const counts = this.bucketCounts;
    // Linear scan: bucket lists are short, and the common small values exit early.
    for (let i = 0; i < bounds.length; i++) {
      if (v <= (bounds[i] as number)) {
        counts[i] = (counts[i] as number) + times;
        break;
      }
    }
    this.sum += v * times;
    this.count += times;
  }
}

class HistogramFamily implements Histogram, Family {
  private readonly series: SeriesSet<HistogramSeries>;
  private readonly header: string;

  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly string[]) {
    if (labelNames.includes(BUCKET_LABEL)) {
      throw new Error(`histogram ${name}: label name "${BUCKET_LABEL}" is reserved for buckets`);
    }
    const upperBounds = Float64Array.from(validBuckets(name, buckets));
    const leTexts = [...Array.from(upperBounds, formatSampleValue), formatSampleValue(Infinity)];
    this.header = familyHeader(name, help, "histogram");
    this.series = new SeriesSet(name, labelNames, (pairs) => {
      const sep = pairs === "" ? "" : ",";
      const bucketPrefixes = leTexts.map((le) => `${name}_bucket{${pairs}${sep}${BUCKET_LABEL}="${le}"} `);
      return new HistogramSeries(upperBounds, bucketPrefixes, `${name}_sum${braced(pairs)} `, `${name}_count${braced(pairs)} `);
    });
  }
  observe(v: number, times?: number): void {
    this.series.bare().observe(v, times);
  }
  labels(l: Labels): HistogramChild {
    return this.series.get(l);
  }
  render(out: string[]): void {
    out.push(this.header);
    for (const s of this.series.all) {
      let cumulative = 0;
      for (let i = 0; i < s.bucketCounts.length; i++) {
        cumulative += s.bucketCounts[i] as number;
        out.push((s.bucketPrefixes[i] as string) + formatSampleValue(cumulative));
      }
      out.push((s.bucketPrefixes[s.bucketCounts.length] as string) + formatSampleValue(s.count));
      out.push(s.sumPrefix + formatSampleValue(s.sum), s.countPrefix + formatSampleValue(s.count));
    }
  }
}

/** Finite, strictly increasing bounds; a trailing `+Inf` is accepted and implied anyway. */
function validBuckets(name: string, buckets: readonly number[]): number[] {
  const bounds = buckets.at(-1) === Infinity ? buckets.slice(0, -1) : [...buckets];
  for (let i = 0; i < bounds.length; i++) {
    const b = bounds[i] as number;
    if (!Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] as number))) {
      throw new Error(`histogram ${name}: buckets must be finite and strictly increasing, got [${buckets.join(", ")}]`);
    }
  }
  return bounds;
}

export class MetricsRegistry {
  private readonly families: Family[] = [];
  /** Every sample name in use, histogram suffixes included, to refuse clashing series. */
  private readonly sampleNames = new Set<string>();

  counter(name: string, help: string, labelNames: string[] = []): Counter {
    this.claim(name, [name], labelNames);
    return this.add(new CounterFamily(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: string[] = []): Gauge {
    this.claim(name, [name], labelNames);
    return this.add(new GaugeFamily(name, help, labelNames));
  }

  /** gauge whose value is read at scrape time */
  gaugeFn(name: string, help: string, read: () => number): void {
    this.claim(name, [name], []);
    this.add(new ReadAtScrapeFamily(name, help, "gauge", read));
  }

  /**
   * counter whose value is read at scrape time from a total kept elsewhere (the kernel's CPU time);
   * `read` must never go down.
   */
  counterFn(name: string, help: string, read: () => number): void {
    this.claim(name, [name], []);
    this.add(new ReadAtScrapeFamily(name, help, "counter", read));
  }

  histogram(name: string, help: string, buckets: number[], labelNames: string[] = []): Histogram {
    this.claim(
      name,
      HISTOGRAM_SUFFIXES.map((suffix) => name + suffix),
      labelNames,
    );
    return this.add(new HistogramFamily(name, help, buckets, labelNames));
  }

  /** Prometheus text exposition format 0.0.4 */
  render(): string {
    const out: string[] = [];
    for (const family of this.families) family.render(out);
    return out.length === 0 ? "" : `${out.join("\n")}\n`;
  }

  private add<F extends Family>(family: F): F {
    this.families.push(family);
    return family;
  }

  private claim(name: string, sampleNames: readonly string[], labelNames: readonly string[]): void {
    if (!METRIC_NAME_PATTERN.test(name)) throw new Error(`invalid metric name "${name}"`);
    for (const label of labelNames) {
      if (!LABEL_NAME_PATTERN.test(label) || label.startsWith(RESERVED_LABEL_PREFIX)) {
        throw new Error(`metric ${name}: invalid label name "${label}"`);
      }
    }
    if (new Set(labelNames).size !== labelNames.length) {
      throw new Error(`metric ${name}: duplicate label names [${labelNames.join(", ")}]`);
    }
    for (const sampleName of [name, ...sampleNames]) {
      if (this.sampleNames.has(sampleName)) throw new Error(`metric ${name} clashes with an existing series ${sampleName}`);
    }
    for (const sampleName of [name, ...sampleNames]) this.sampleNames.add(sampleName);
  }
}
