import { describe, expect, test } from "bun:test";
import { MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from "./metrics";
import { createNodeMetrics, startEventLoopLagMonitor } from "./nodeMetrics";
import { TOUCHLINE_VERSION } from "./buildInfo";
import { backgroundFdCount, maxFdsFromLimits, processReaders, residentBytesFromStatus } from "./processMetrics";

/** A count from a listing started after this call (one under way may predate what the test just did). */
async function freshCount(count: ReturnType<typeof backgroundFdCount>): Promise<number> {
  await count.settled();
  count();
  await count.settled();
  return count();
}
import { closeSync, existsSync, openSync } from "node:fs";
import packageJson from "../../package.json" with { type: "json" };
import { type MetricType, parsePrometheus, sampleValue, sumSamples } from "../../test/helpers/promParse";

describe("MetricsRegistry counters", () => {
  test("an empty registry renders nothing", () => {
    expect(new MetricsRegistry().render()).toBe("");
  });

  test("an unlabelled counter starts at 0 and adds increments", () => {
    const registry = new MetricsRegistry();
    const counter = registry.counter("things_total", "Things seen.");
    expect(sampleValue(parsePrometheus(registry.render()), "things_total")).toBe(0);
    counter.inc();
    counter.inc(2.5);
    const parsed = parsePrometheus(registry.render());
    const family = parsed.get("things_total");
    expect(family?.type).toBe("counter");
    expect(family?.help).toBe("Things seen.");
    expect(sampleValue(parsed, "things_total")).toBe(3.5);
  });

  test("labels() returns one cached child per label set, each counted apart", () => {
    const registry = new MetricsRegistry();
    const counter = registry.counter("closed_total", "Closed streams.", ["reason", "node"]);
    const slow = counter.labels({ reason: "slow", node: "a" });
    expect(counter.labels({ node: "a", reason: "slow" })).toBe(slow);
    slow.inc();
    slow.inc();
    counter.labels({ reason: "client", node: "a" }).inc(5);
    counter.labels({ reason: "client", node: "b" }).inc();
    const parsed = parsePrometheus(registry.render());
    expect(sampleValue(parsed, "closed_total", { reason: "slow", node: "a" })).toBe(2);
    expect(sampleValue(parsed, "closed_total", { reason: "client", node: "a" })).toBe(5);
    expect(sampleValue(parsed, "closed_total", { reason: "client", node: "b" })).toBe(1);
    expect(sumSamples(parsed, "closed_total", { reason: "client" })).toBe(6);
    expect(sampleValue(parsed, "closed_total")).toBeUndefined();
  });

  test("a labelled metric refuses bare updates and wrong label sets", () => {
    const counter = new MetricsRegistry().counter("c_total", "c", ["reason"]);
    expect(() => counter.inc()).toThrow(/use labels\(\)/);
    expect(() => counter.labels({})).toThrow(/takes labels/);
    expect(() => counter.labels({ reason: "a", extra: "b" })).toThrow(/takes labels/);
    expect(() => counter.labels({ other: "a" })).toThrow(/takes labels/);
    expect(() => counter.labels({ reason: 1 as unknown as string })).toThrow(/takes labels/);
  });

  test("counters refuse negative and NaN increments", () => {
    const counter = new MetricsRegistry().counter("c_total", "c");
    expect(() => counter.inc(-1)).toThrow(RangeError);
    expect(() => counter.inc(NaN)).toThrow(RangeError);
  });
});

describe("MetricsRegistry gauges", () => {
  test("set, inc and dec", () => {
    const registry = new MetricsRegistry();
    const open = registry.gauge("open", "Open things.");
    open.set(10);
    open.inc();
    open.dec(3);
    const byKind = registry.gauge("by_kind", "By kind.", ["kind"]);
    byKind.labels({ kind: "x" }).set(-2.5);
    const parsed = parsePrometheus(registry.render());
    expect(parsed.get("open")?.type).toBe("gauge");
    expect(sampleValue(parsed, "open")).toBe(8);
    expect(sampleValue(parsed, "by_kind", { kind: "x" })).toBe(-2.5);
  });

  test("gaugeFn is read at scrape time, and a failing reader shows NaN without breaking the page", () => {
    const registry = new MetricsRegistry();
    let current = 1;
    registry.gaugeFn("live_value", "Read when scraped.", () => current);
    registry.gaugeFn("broken_value", "Reader throws.", () => {
      throw new Error("boom");
    });
    expect(sampleValue(parsePrometheus(registry.render()), "live_value")).toBe(1);
    current = 42;
    const parsed = parsePrometheus(registry.render());
    expect(sampleValue(parsed, "live_value")).toBe(42);
    expect(sampleValue(parsed, "broken_value")).toBeNaN();
  });

  test("counterFn is a counter read at scrape time", () => {
    const registry = new MetricsRegistry();
    let total = 1.5;
    registry.counterFn("work_seconds_total", "Read when scraped.", () => total);
    expect(registry.render()).toBe("# HELP work_seconds_total Read when scraped.\n# TYPE work_seconds_total counter\nwork_seconds_total 1.5\n");
    total = 2.25;
    const parsed = parsePrometheus(registry.render());
    expect(parsed.get("work_seconds_total")?.type).toBe("counter");
    expect(sampleValue(parsed, "work_seconds_total")).toBe(2.25);
    expect(() => registry.gaugeFn("work_seconds_total", "x", () => 0)).toThrow(/clashes/);
  });

  test("special values render as +Inf, -Inf and NaN", () => {
    const registry = new MetricsRegistry();
    registry.gauge("pos", "p").set(Infinity);
    registry.gauge("neg", "n").set(-Infinity);
    registry.gauge("nan", "n").set(NaN);
    const text = registry.render();
    expect(text).toContain("pos +Inf\n");
    expect(text).toContain("neg -Inf\n");
    expect(text).toContain("nan NaN\n");
    const parsed = parsePrometheus(text);
    expect(sampleValue(parsed, "pos")).toBe(Infinity);
    expect(sampleValue(parsed, "neg")).toBe(-Infinity);
  });
});

describe("MetricsRegistry histograms", () => {
  test("buckets are cumulative, bounds inclusive, with +Inf, _sum and _count", () => {
    const registry = new MetricsRegistry();
    const latency = registry.histogram("latency_seconds", "Latency.", [0.01, 0.1, 1]);
    for (const v of [0.005, 0.01, 0.05, 0.5, 3, NaN]) latency.observe(v);
    const text = registry.render();
    const parsed = parsePrometheus(text);
    expect(parsed.get("latency_seconds")?.type).toBe("histogram");
    expect(sampleValue(parsed, "latency_seconds_bucket", { le: "0.01" })).toBe(2);
    expect(sampleValue(parsed, "latency_seconds_bucket", { le: "0.1" })).toBe(3);
    expect(sampleValue(parsed, "latency_seconds_bucket", { le: "1" })).toBe(4);
    expect(sampleValue(parsed, "latency_seconds_bucket", { le: "+Inf" })).toBe(5);
    expect(sampleValue(parsed, "latency_seconds_count")).toBe(5);
    expect(sampleValue(parsed, "latency_seconds_sum")).toBeCloseTo(3.565, 10);
    // le comes last, after the user's labels, and bounds keep their plain decimal form.
    expect(text).toContain('latency_seconds_bucket{le="0.01"} 2\n');
  });

  test("labelled histograms keep one set of buckets per child", () => {
    const registry = new MetricsRegistry();
    const h = registry.histogram("size_bytes", "Sizes.", [100, 1000], ["route"]);
    h.labels({ route: "/a" }).observe(50);
    h.labels({ route: "/b" }).observe(5000);
    const text = registry.render();
    expect(text).toContain('size_bytes_bucket{route="/a",le="100"} 1\n');
    const parsed = parsePrometheus(text);
    expect(sampleValue(parsed, "size_bytes_bucket", { route: "/b", le: "1000" })).toBe(0);
    expect(sampleValue(parsed, "size_bytes_bucket", { route: "/b", le: "+Inf" })).toBe(1);
    expect(sampleValue(parsed, "size_bytes_sum", { route: "/b" })).toBe(5000);
  });

  test("bucket lists must be finite and increasing; a trailing +Inf is implied and accepted", () => {
    const registry = new MetricsRegistry();
    expect(() => registry.histogram("h1", "h", [1, 1])).toThrow(/strictly increasing/);
    expect(() => registry.histogram("h2", "h", [2, 1])).toThrow(/strictly increasing/);
    expect(() => registry.histogram("h3", "h", [1, NaN])).toThrow(/finite/);
    expect(() => registry.histogram("h4", "h", [1], ["le"])).toThrow(/reserved/);
    registry.histogram("h5", "h", [1, Infinity]).observe(2);
    const parsed = parsePrometheus(registry.render());
    expect(parsed.get("h5")?.samples.filter((s) => s.name === "h5_bucket")).toHaveLength(2);
  });
});

describe("MetricsRegistry exposition", () => {
  test("label values escape backslash, quote and line feed; help escapes backslash and line feed", () => {
    const registry = new MetricsRegistry();
    const nasty = 'a\\b"c\nd';
    registry.counter("esc_total", 'Help with \\ and\nnewline and "quotes".', ["v"]).labels({ v: nasty }).inc();
    const text = registry.render();
    expect(text).toContain('esc_total{v="a\\\\b\\"c\\nd"} 1\n');
    expect(text).toContain('# HELP esc_total Help with \\\\ and\\nnewline and "quotes".\n');
    const parsed = parsePrometheus(text);
    expect(sampleValue(parsed, "esc_total", { v: nasty })).toBe(1);
    expect(parsed.get("esc_total")?.help).toBe('Help with \\ and\nnewline and "quotes".');
  });

  test("families render in registration order, each with HELP then TYPE", () => {
    const registry = new MetricsRegistry();
    registry.gauge("b_second", "second");
    registry.counter("a_first_total", "first");
    const lines = registry.render().split("\n");
    expect(lines.slice(0, 3)).toEqual(["# HELP b_second second", "# TYPE b_second gauge", "b_second 0"]);
    expect(lines[3]).toBe("# HELP a_first_total first");
  });

  test("invalid and clashing names are refused", () => {
    const registry = new MetricsRegistry();
    expect(() => registry.counter("9bad", "x")).toThrow(/invalid metric name/);
    expect(() => registry.counter("ok_total", "x", ["bad-label"])).toThrow(/invalid label name/);
    expect(() => registry.counter("ok_total", "x", ["__reserved"])).toThrow(/invalid label name/);
    expect(() => registry.counter("ok_total", "x", ["a", "a"])).toThrow(/duplicate label/);
    registry.histogram("req_seconds", "x", [1]);
    expect(() => registry.gauge("req_seconds_count", "x")).toThrow(/clashes/);
    registry.counter("dup_total", "x");
    expect(() => registry.gauge("dup_total", "x")).toThrow(/clashes/);
  });

  test("the content type names format 0.0.4", () => {
    expect(PROMETHEUS_CONTENT_TYPE).toBe("text/plain; version=0.0.4; charset=utf-8");
  });
});

describe("promParse is strict", () => {
  const bad: Record<string, string> = {
    "missing final line feed": "x 1",
    "missing value": "x\n",
    "garbage after value": "x 1 2 3\n",
    "non-numeric value": "x one\n",
    "invalid escape in label value": 'x{a="\\t"} 1\n',
    "unterminated label value": 'x{a="b} 1\n',
    "label without quotes": "x{a=b} 1\n",
    "duplicate label": 'x{a="1",a="2"} 1\n',
    "duplicate sample": "x 1\nx 2\n",
    "unknown type": "# TYPE x thing\nx 1\n",
    "TYPE after samples": "x 1\n# TYPE x gauge\n",
    "second TYPE": "# TYPE x gauge\n# TYPE x gauge\nx 1\n",
    "family not contiguous": 'x 1\ny 1\nx{a="b"} 1\n',
    "negative counter": "# TYPE x_total counter\nx_total -1\n",
    "histogram without +Inf": '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    "histogram not cumulative": '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="2"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
    "histogram +Inf differs from count": '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
    "carriage return": "x 1\r\n",
  };
  for (const [what, text] of Object.entries(bad)) {
    test(`rejects ${what}`, () => {
      expect(() => parsePrometheus(text)).toThrow();
    });
  }

  test("accepts comments, blank lines, timestamps and a trailing comma in labels", () => {
    const parsed = parsePrometheus('# a free comment\n\nx{a="1",} 2 1700000000000\n');
    expect(sampleValue(parsed, "x", { a: "1" })).toBe(2);
    expect(parsed.get("x")?.samples[0]?.timestamp).toBe(1700000000000);
    expect(parsed.get("x")?.type).toBe("untyped");
  });
});

describe("createNodeMetrics", () => {
  const expectedTypes: Record<string, MetricType> = {
    touchline_streams_open: "gauge",
    touchline_streams_max: "gauge",
    touchline_streams_opened_total: "counter",
    touchline_streams_closed_total: "counter",
    touchline_slow_clients_cut_total: "counter",
    touchline_events_published_total: "counter",
    touchline_events_delivered_total: "counter",
    touchline_delivery_latency_seconds: "histogram",
    touchline_replay_requests_total: "counter",
    touchline_replayed_events_total: "counter",
    touchline_owned_matches: "gauge",
    touchline_upstream_feeds: "gauge",
    touchline_cluster_nodes_with_other_settings: "gauge",
    touchline_ownership_moves_total: "counter",
    touchline_proxy_refused_total: "counter",
    touchline_nats_connected: "gauge",
    touchline_event_loop_lag_seconds: "gauge",
    touchline_rejected_total: "counter",
    touchline_limited_total: "counter",
    touchline_limiter_keys: "gauge",
    touchline_limiter_evictions_total: "counter",
    touchline_build_info: "gauge",
    process_resident_memory_bytes: "gauge",
    process_cpu_seconds_total: "counter",
    process_open_fds: "gauge",
    process_max_fds: "gauge",
    process_start_time_seconds: "gauge",
  };

  test("registers exactly the catalogue, with its types", () => {
    const registry = new MetricsRegistry();
    createNodeMetrics(registry);
    const parsed = parsePrometheus(registry.render());
    expect(Object.fromEntries([...parsed.values()].map((f) => [f.name, f.type]))).toEqual(expectedTypes);
  });

  test("fixed-value labels exist at 0 from the first scrape and count apart", () => {
    const registry = new MetricsRegistry();
    const m = createNodeMetrics(registry);
    let parsed = parsePrometheus(registry.render());
    for (const reason of ["client", "slow", "drain", "error", "auth_expired", "replay_paged"]) {
      expect(sampleValue(parsed, "touchline_streams_closed_total", { reason })).toBe(0);
    }
    for (const reason of ["rate_limited", "capacity", "too_large", "bad_request", "unauthorized"]) {
      expect(sampleValue(parsed, "touchline_rejected_total", { reason })).toBe(0);
    }
    for (const reason of ["untrusted_peer", "bad_header", "header_timeout", "backend_unreachable"]) {
      expect(sampleValue(parsed, "touchline_proxy_refused_total", { reason })).toBe(0);
    }
    expect(sampleValue(parsed, "touchline_replay_requests_total", { source: "jetstream" })).toBe(0);
    expect(sampleValue(parsed, "touchline_events_published_total", { result: "duplicate" })).toBe(0);

    m.streamsClosed.slow.inc();
    m.eventsPublished.stored.inc();
    m.eventsDelivered.inc(10_000);
    m.deliveryLatency.observe(0.003);
    m.natsConnected.set(1);
    parsed = parsePrometheus(registry.render());
    expect(sampleValue(parsed, "touchline_streams_closed_total", { reason: "slow" })).toBe(1);
    expect(sampleValue(parsed, "touchline_streams_closed_total", { reason: "client" })).toBe(0);
    expect(sampleValue(parsed, "touchline_events_published_total", { result: "stored" })).toBe(1);
    expect(sampleValue(parsed, "touchline_events_delivered_total")).toBe(10_000);
    expect(sampleValue(parsed, "touchline_delivery_latency_seconds_bucket", { le: "0.0025" })).toBe(0);
    expect(sampleValue(parsed, "touchline_delivery_latency_seconds_bucket", { le: "0.005" })).toBe(1);
    expect(sampleValue(parsed, "touchline_delivery_latency_seconds_bucket", { le: "10" })).toBe(1);
    expect(sampleValue(parsed, "touchline_nats_connected")).toBe(1);
  });
});

describe("build info and process metrics", () => {
  test("touchline_build_info is 1 with the version in package.json", () => {
    expect(TOUCHLINE_VERSION).toBe(packageJson.version);
    const registry = new MetricsRegistry();
    createNodeMetrics(registry);
    const parsed = parsePrometheus(registry.render());
    expect(parsed.get("touchline_build_info")?.samples).toEqual([{ name: "touchline_build_info", labels: { version: packageJson.version }, value: 1 }]);
  });

  test("the process figures are read from the readers at each scrape", () => {
    let cpu = 1.25;
    const registry = new MetricsRegistry();
    createNodeMetrics(registry, {
      residentBytes: () => 50 * 1024 * 1024,
      cpuSeconds: () => cpu,
      openFds: () => 17,
      maxFds: () => 65536,
      startTimeSeconds: () => 1_700_000_000.5,
    });
    let parsed = parsePrometheus(registry.render());
    expect(sampleValue(parsed, "process_resident_memory_bytes")).toBe(52_428_800);
    expect(sampleValue(parsed, "process_cpu_seconds_total")).toBe(1.25);
    expect(sampleValue(parsed, "process_open_fds")).toBe(17);
    expect(sampleValue(parsed, "process_max_fds")).toBe(65536);
    expect(sampleValue(parsed, "process_start_time_seconds")).toBe(1_700_000_000.5);
    cpu = 3;
    parsed = parsePrometheus(registry.render());
    expect(sampleValue(parsed, "process_cpu_seconds_total")).toBe(3);
  });

  test("/proc/<pid>/status and /proc/<pid>/limits are parsed", () => {
    expect(residentBytesFromStatus("Name:\tbun\nVmHWM:\t   30000 kB\nVmRSS:\t   28812 kB\nRssAnon:\t 1 kB\n")).toBe(28812 * 1024);
    expect(() => residentBytesFromStatus("Name:\tbun\n")).toThrow(/VmRSS/);
    const limits = [
      "Limit                     Soft Limit           Hard Limit           Units     ",
      "Max cpu time              unlimited            unlimited            seconds   ",
      "Max open files            20000                524288               files     ",
      "Max locked memory         8388608              8388608              bytes     ",
    ].join("\n");
    expect(maxFdsFromLimits(limits)).toBe(20000);
    expect(maxFdsFromLimits("Max open files            unlimited            unlimited            files     \n")).toBe(Infinity);
    expect(() => maxFdsFromLimits("Max cpu time              unlimited            unlimited            seconds   \n")).toThrow(/Max open files/);
  });

  test.skipIf(!existsSync("/proc/self/fd"))("on Linux the readers follow this process: files opened, memory, CPU", async () => {
    const r = processReaders();
    const openFds = backgroundFdCount("/proc/self/fd");
    const before = await freshCount(openFds);
    const fds = Array.from({ length: 5 }, () => openSync("/dev/null", "r"));
    try {
      // Counted off the event loop: a read answers the last finished count (it has not seen the five yet).
      expect(openFds()).toBe(before);
      expect(await freshCount(openFds)).toBe(before + 5);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    expect(await freshCount(openFds)).toBe(before);
    expect(r.openFds()).toBeGreaterThan(0);
    expect(r.maxFds()).toBeGreaterThanOrEqual(before);
    // Near the runtime's own figure (both read the kernel's, a moment apart).
    expect(r.residentBytes() / process.memoryUsage.rss()).toBeCloseTo(1, 0);
    const cpu = r.cpuSeconds();
    const until = performance.now() + 50;
    while (performance.now() < until) {
      // Busy: CPU time must move.
    }
    expect(r.cpuSeconds()).toBeGreaterThan(cpu);
    const start = r.startTimeSeconds();
    expect(start).toBeLessThanOrEqual(Date.now() / 1000);
    expect(start).toBeGreaterThan(Date.now() / 1000 - 3600);
  });
});

describe("startEventLoopLagMonitor", () => {
  const PROBE_INTERVAL_MS = 10;
  const BLOCK_MS = 80;

  test("reports a blocked loop as lag, then stops", async () => {
    const readings: number[] = [];
    const stop = startEventLoopLagMonitor({ set: (v) => readings.push(v) }, PROBE_INTERVAL_MS);
    await Bun.sleep(PROBE_INTERVAL_MS * 3);
    const blockedUntil = performance.now() + BLOCK_MS;
    while (performance.now() < blockedUntil) {
      // Busy-wait: the probe timer cannot fire until this returns.
    }
    await Bun.sleep(PROBE_INTERVAL_MS * 3);
    stop();
    const seen = readings.length;
    expect(seen).toBeGreaterThan(1);
    expect(Math.max(...readings)).toBeGreaterThan((BLOCK_MS - PROBE_INTERVAL_MS * 2) / 1000);
    expect(Math.min(...readings)).toBeGreaterThanOrEqual(0);
    await Bun.sleep(PROBE_INTERVAL_MS * 3);
    expect(readings.length).toBe(seen);
  });

  test("keeps the window's worst probe: a stall stays in the gauge for the window, then leaves it", async () => {
    const readings: number[] = [];
    const windowMs = PROBE_INTERVAL_MS * 10;
    const stop = startEventLoopLagMonitor({ set: (v) => readings.push(v) }, PROBE_INTERVAL_MS, windowMs);
    await Bun.sleep(PROBE_INTERVAL_MS * 3);
    const blockedUntil = performance.now() + BLOCK_MS;
    while (performance.now() < blockedUntil) {
      // Busy-wait: the probe timer cannot fire until this returns.
    }
    const stalledAt = readings.length;
    await Bun.sleep(PROBE_INTERVAL_MS * 4);
    // The probes after the stall fire on time, yet the gauge still shows the stall.
    const afterStall = readings.slice(stalledAt);
    expect(afterStall.length).toBeGreaterThan(2);
    for (const r of afterStall) expect(r).toBeGreaterThan((BLOCK_MS - PROBE_INTERVAL_MS * 2) / 1000);
    // A whole window of probes later it has left.
    await Bun.sleep(windowMs * 3);
    stop();
    expect(readings.at(-1)!).toBeLessThan((BLOCK_MS - PROBE_INTERVAL_MS * 2) / 1000);
  });

  test("refuses a non-positive interval", () => {
    expect(() => startEventLoopLagMonitor({ set: () => {} }, 0)).toThrow(RangeError);
  });
});
