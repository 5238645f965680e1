/**
 * Delivery latencies in whole milliseconds (publish times are ms since epoch, so finer buckets
 * would be false precision). Millions of samples cost one array, and histograms from several
 * generator processes merge by adding counts.
 */

/** Latencies above this land in the last bucket; the exact maximum is kept separately. */
const MAX_TRACKED_MS = 120_000;

/** Wire form: [latency ms, count] pairs for the non-empty buckets, plus the exact maximum. */
export interface HistogramSnapshot {
  buckets: Array<[number, number]>;
  max: number;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export class LatencyHistogram {
  private counts = new Uint32Array(MAX_TRACKED_MS + 1);
  private total = 0;
  private maxMs = 0;

  get count(): number {
    return this.total;
  }

  record(latencyMs: number): void {
    // Clocks are the same machine's, but ts is rounded down to the ms by the publisher: never negative.
    const ms = Math.max(latencyMs, 0);
    this.counts[Math.min(ms, MAX_TRACKED_MS)]!++;
    this.total++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.maxMs = 0;
  }

  snapshot(): HistogramSnapshot {
    const buckets: Array<[number, number]> = [];
    for (let ms = 0; ms <= MAX_TRACKED_MS; ms++) {
      const n = this.counts[ms]!;
      if (n > 0) buckets.push([ms, n]);
    }
    return { buckets, max: this.maxMs };
  }

  merge(snapshot: HistogramSnapshot): void {
    for (const [ms, n] of snapshot.buckets) {
      this.counts[Math.min(ms, MAX_TRACKED_MS)]! += n;
      this.total += n;
    }
    if (snapshot.max > this.maxMs) this.maxMs = snapshot.max;
  }

  /** Smallest latency such that at least `fraction` of the samples are at or below it. */
  percentile(fraction: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.ceil(fraction * this.total);
    let seen = 0;
    for (let ms = 0; ms <= MAX_TRACKED_MS; ms++) {
      seen += this.counts[ms]!;
      if (seen >= rank) return ms === MAX_TRACKED_MS ? this.maxMs : ms;
    }
    return this.maxMs;
  }

  summary(): LatencySummary {
    return { count: this.total, p50: this.percentile(0.5), p99: this.percentile(0.99), max: this.maxMs };
  }
}
