/**
 * The observability kit against a real node: cluster/prometheus/alerts.yml (with promtool: `check rules`,
 * and `test rules` on alerts.test.yml, which makes each alert fire on the series it is meant for and keeps
 * a healthy node quiet), cluster/prometheus/prometheus.yml (`check config`), and the Grafana dashboard
 * cluster/grafana/touchline.json.
 *
 * Every metric the dashboard's queries and the alert rules name must be in a live node's /metrics (a
 * real nats-server and node are started here). Then a real Prometheus scrapes that node with the alert
 * rules loaded: every dashboard query must run and return series, every rule must evaluate without
 * error and stay quiet on the healthy node, and losing NATS, then the node, must raise the alerts meant
 * for them.
 *
 *   node_modules/.bin/bun test test/observability.test.ts
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { freePort, startNats, startNode, waitFor, type NatsFixture, type NodeFixture } from "./helpers/cluster.ts";
import { parsePrometheus } from "./helpers/promParse.ts";
import { openSse, type SseConnection } from "./helpers/sse.ts";
import { metricValue, publishOk, uniqueMatch } from "./integration/touchlineApi.ts";

setDefaultTimeout(60_000);

const ROOT = resolve(import.meta.dir, "..");
const PROMETHEUS_DIR = join(ROOT, "cluster", "prometheus");
const ALERTS = join(PROMETHEUS_DIR, "alerts.yml");
const ALERTS_TESTS = join(PROMETHEUS_DIR, "alerts.test.yml");
const PROMETHEUS_CONFIG = join(PROMETHEUS_DIR, "prometheus.yml");
const DASHBOARD = join(ROOT, "cluster", "grafana", "touchline.json");
/** The job the compose Prometheus scrapes the nodes as; the rules select it. */
const JOB = "touchline";
/** Series Prometheus records itself for every target: rules may use them, the dashboard does not need to. */
const PROMETHEUS_OWN_SERIES = new Set(["up"]);
const PROMETHEUS_SCRAPE_S = 1;

const hasPromtool = Bun.which("promtool") !== null;
const hasPrometheus = Bun.which("prometheus") !== null;

// ---------------------------------------------------------------------------------------------------
// PromQL: the metric names an expression reads.

const PROMQL_KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"]);

/**
 * The metric names an expression selects: identifiers that are not functions, keywords, label names
 * (inside `{...}` or a `by (...)` list), durations or numbers. Strings and Grafana variables are dropped
 * first (they sit inside matchers and ranges anyway).
 */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const before = stripped[m.index - 1];
    if (before !== undefined && /[0-9.$]/.test(before)) continue; // 1e3, 5m, a variable
    if (/^\s*\(/.test(stripped.slice(m.index + m[0].length))) continue; // a function call
    if (PROMQL_KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

// ---------------------------------------------------------------------------------------------------
// The dashboard and the rules, as files.

interface Target {
  expr?: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
  refId?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; allValue?: string; current?: { value?: unknown } }[] };
}

const dashboard = JSON.parse(await Bun.file(DASHBOARD).text()) as Dashboard;
const alertRules = Bun.YAML.parse(await Bun.file(ALERTS).text()) as {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string> }[] }[];
};

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}
const panels = allPanels(dashboard.panels);
const queryPanels = panels.filter((p) => p.type !== "row");
const dashboardQueries = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? "", legend: t.legendFormat ?? "" })));
/** `label_values(metric, label)` of the query variables. */
const variableMetrics = dashboard.templating.list.flatMap((v) => {
  if (v.type !== "query") return [];
  const q = typeof v.query === "string" ? v.query : ((v.query as { query?: string }).query ?? "");
  const m = /^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*[A-Za-z_]\w*\s*\)$/.exec(q);
  if (!m) throw new Error(`dashboard variable ${v.name}: unexpected query ${q}`);
  return [m[1]!];
});
const alerts = alertRules.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);

/** Runs a dashboard query in plain PromQL: Grafana's variables become what "All" and a 1 s scrape give. */
function asPromQL(expr: string, rateInterval: string): string {
  return expr.replaceAll("$__rate_interval", rateInterval).replaceAll("$instance", ".*");
}

function promtool(...args: string[]): { code: number; output: string } {
  const r = Bun.spawnSync(["promtool", ...args], { cwd: PROMETHEUS_DIR, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, output: (r.stdout.toString() + r.stderr.toString()).trim() };
}

describe("metricNamesIn", () => {
  test("finds the selected metrics and nothing else", () => {
    expect(
      metricNamesIn('histogram_quantile(0.99, sum by (instance, le) (rate(a_seconds_bucket{instance=~"$instance",le!="1e3"}[$__rate_interval])))'),
    ).toEqual(["a_seconds_bucket"]);
    expect(metricNamesIn("increase(x_total[10m]) > 10 and increase(x_total[10m]) > 0.01 * y")).toEqual(["x_total", "y"]);
    expect(metricNamesIn("time() - process_start_time_seconds offset 5m")).toEqual(["process_start_time_seconds"]);
    expect(metricNamesIn('absent(up{job="touchline"} == 1)')).toEqual(["up"]);
    expect(metricNamesIn("rate(a[5m]) * on(instance) group_left(version) b")).toEqual(["a", "b"]);
    expect(metricNamesIn("sum without (reason) (c) / ignoring(x) d unless e")).toEqual(["c", "d", "e"]);
  });
});

describe("alert rules (promtool)", () => {
  test("there are at least six alerts, each with a severity, a summary and a description", () => {
    expect(alerts.length).toBeGreaterThanOrEqual(6);
    const names = alerts.map((a) => a.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of alertRules.groups.flatMap((g) => g.rules)) {
      const r = rule as { alert?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
      expect(`${r.alert}: ${r.labels?.severity}`).toMatch(/: (critical|warning)$/);
      expect(r.annotations?.summary, `${r.alert} summary`).toBeTruthy();
      expect(r.annotations?.description, `${r.alert} description`).toBeTruthy();
    }
  });

  test("the alerts watch what matters: a node down, NATS lost, capacity, slow clients, event loop, latency, 503s", () => {
    const watched = new Set(alerts.flatMap((a) => metricNamesIn(a.expr)));
    for (const name of [
      "up",
      "touchline_nats_connected",
      "touchline_streams_open",
      "process_max_fds",
      "touchline_slow_clients_cut_total",
      "touchline_event_loop_lag_seconds",
      "touchline_delivery_latency_seconds_bucket",
      "touchline_rejected_total",
    ]) {
      expect([...watched]).toContain(name);
    }
  });

  test.skipIf(!hasPromtool)("promtool check rules accepts alerts.yml", () => {
    const r = promtool("check", "rules", ALERTS);
    console.log(`$ promtool check rules cluster/prometheus/alerts.yml\n${r.output}`);
    expect(r.code).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${alertRules.groups.flatMap((g) => g.rules).length} rules found`);
  });

  test.skipIf(!hasPromtool)("promtool test rules: every alert fires on its series, none on a healthy node", () => {
    const r = promtool("test", "rules", ALERTS_TESTS);
    console.log(`$ promtool test rules cluster/prometheus/alerts.test.yml\n${r.output}`);
    expect(r.output).toContain("SUCCESS");
    expect(r.code).toBe(0);
    // Each alert is tested both firing and quiet.
    const tests = Bun.YAML.parse(readFileSync(ALERTS_TESTS, "utf8")) as {
      tests: { name: string; alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const a of alerts) {
      expect(
        cases.some((c) => c.alertname === a.alert && c.exp_alerts.length > 0),
        `${a.alert} is tested firing`,
      ).toBe(true);
      expect(
        cases.some((c) => c.alertname === a.alert && c.exp_alerts.length === 0),
        `${a.alert} is tested quiet`,
      ).toBe(true);
    }
  });

  test.skipIf(!hasPromtool)("promtool check config accepts prometheus.yml with its rule files", () => {
    const r = promtool("check", "config", PROMETHEUS_CONFIG);
    console.log(`$ promtool check config cluster/prometheus/prometheus.yml\n${r.output}`);
    expect(r.code).toBe(0);
    expect(r.output).toContain("SUCCESS");
  });
});

describe("the Grafana dashboard", () => {
  test("is well formed: unique panel ids, every panel queried through the data-source variable, inside 24 columns", () => {
    expect(dashboard.uid).toBe("touchline");
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of queryPanels) {
      expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own template variable, literally.
      expect(p.datasource?.uid, p.title).toBe("${datasource}");
      for (const t of p.targets!) {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own template variable, literally.
        expect(t.datasource?.uid, p.title).toBe("${datasource}");
        expect(t.expr?.trim(), p.title).toBeTruthy();
      }
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
    const ds = dashboard.templating.list.find((v) => v.name === "datasource");
    expect(ds?.type).toBe("datasource");
    expect(ds?.query).toBe("prometheus");
  });

  test("covers the node and the cluster: streams, deliveries, latency histogram, publishes, replays, cuts, refusals, ownership, memory, event-loop lag", () => {
    const used = new Set(dashboardQueries.flatMap((q) => metricNamesIn(q.expr)));
    for (const name of [
      "touchline_streams_open",
      "touchline_streams_closed_total",
      "touchline_events_delivered_total",
      "touchline_delivery_latency_seconds_bucket",
      "touchline_events_published_total",
      "touchline_replay_requests_total",
      "touchline_slow_clients_cut_total",
      "touchline_rejected_total",
      "touchline_ownership_moves_total",
      "touchline_owned_matches",
      "process_resident_memory_bytes",
      "process_cpu_seconds_total",
      "touchline_event_loop_lag_seconds",
      "touchline_nats_connected",
      "touchline_build_info",
    ]) {
      expect([...used]).toContain(name);
    }
    expect(panels.some((p) => p.type === "heatmap")).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------
// Against a live node, then a real Prometheus scraping it.

describe("against a live node", () => {
  let nats: NatsFixture;
  let node: NodeFixture;
  let stream: SseConnection | undefined;
  let prometheus: Subprocess | undefined;
  let prometheusUrl = "";
  let workDir = "";

  beforeAll(async () => {
    nats = await startNats();
    node = await startNode({ natsUrl: nats.url });
    // Something to show: a stream open, a few events delivered, one resume.
    const match = uniqueMatch("obs");
    stream = await openSse(`${node.url}/matches/${match}/events`);
    let last = "";
    for (let i = 0; i < 5; i++) last = await publishOk(node.url, match, { type: "goal", data: { i } });
    await waitFor(async () => (await metricValue(node.url, "touchline_events_delivered_total")) >= 1, 10_000, "a delivery");
    const resumed = await openSse(`${node.url}/matches/${match}/events`, { headers: { "last-event-id": last } });
    await resumed.close();
  }, 30_000);

  afterAll(async () => {
    await stream?.close();
    prometheus?.kill("SIGTERM");
    await prometheus?.exited;
    if (node?.proc.exitCode === null) await node.kill();
    await nats?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  async function exposedSeries(): Promise<Set<string>> {
    const parsed = parsePrometheus(await (await fetch(`${node.url}/metrics`)).text());
    return new Set([...parsed.values()].flatMap((f) => [f.name, ...f.samples.map((s) => s.name)]));
  }

  test("every metric the dashboard queries is in the node's /metrics", async () => {
    const exposed = await exposedSeries();
    const missing = [
      ...dashboardQueries.flatMap((q) =>
        metricNamesIn(q.expr)
          .filter((n) => !exposed.has(n))
          .map((n) => `${q.panel}: ${n}`),
      ),
      ...variableMetrics.filter((n) => !exposed.has(n)).map((n) => `variable: ${n}`),
    ];
    expect(missing).toEqual([]);
    expect(dashboardQueries.length).toBeGreaterThan(20);
  });

  test("every metric the alert rules read is in the node's /metrics (or is Prometheus's own `up`)", async () => {
    const exposed = await exposedSeries();
    const missing = alerts.flatMap((a) =>
      metricNamesIn(a.expr)
        .filter((n) => !exposed.has(n) && !PROMETHEUS_OWN_SERIES.has(n))
        .map((n) => `${a.alert}: ${n}`),
    );
    expect(missing).toEqual([]);
  });

  async function query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
    return body.data!.result;
  }

  type ActiveAlert = { labels: Record<string, string>; state: string };
  async function activeAlerts(): Promise<ActiveAlert[]> {
    const body = (await (await fetch(`${prometheusUrl}/api/v1/alerts`)).json()) as { data: { alerts: ActiveAlert[] } };
    return body.data.alerts;
  }

  test.skipIf(!hasPrometheus)("a real Prometheus scraping the node runs every dashboard query and every rule", async () => {
    workDir = mkdtempSync(join(tmpdir(), "touchline-prometheus-"));
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const config = [
      "global:",
      `  scrape_interval: ${PROMETHEUS_SCRAPE_S}s`,
      `  evaluation_interval: ${PROMETHEUS_SCRAPE_S}s`,
      "rule_files:",
      `  - ${JSON.stringify(ALERTS)}`,
      "scrape_configs:",
      `  - job_name: ${JOB}`,
      "    static_configs:",
      `      - targets: ["127.0.0.1:${node.port}"]`,
      "",
    ].join("\n");
    await Bun.write(join(workDir, "prometheus.yml"), config);
    let output = "";
    prometheus = Bun.spawn(
      [
        "prometheus",
        `--config.file=${join(workDir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(workDir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdout: "pipe", stderr: "pipe" },
    );
    void (async () => {
      for await (const chunk of prometheus!.stderr as ReadableStream<Uint8Array>) output += new TextDecoder().decode(chunk);
    })();
    await waitFor(async () => (await fetch(`${prometheusUrl}/-/ready`)).ok, 20_000, "Prometheus ready").catch((e) => {
      throw new Error(`${(e as Error).message}\n${output}`);
    });
    // Enough scrapes for rate() over the interval the queries are run with.
    const rateInterval = `${PROMETHEUS_SCRAPE_S * 6}s`;
    await waitFor(
      async () => Number((await query(`count_over_time(up{job="${JOB}"}[${rateInterval}])`))[0]?.value[1] ?? 0) >= 5,
      20_000,
      "five scrapes of the node",
    );
    expect(Number((await query(`up{job="${JOB}"}`))[0]!.value[1])).toBe(1);

    // Every query returns series, and each series has the labels its legend shows ({{reason}}...).
    const problems: string[] = [];
    for (const q of dashboardQueries) {
      const result = await query(asPromQL(q.expr, rateInterval));
      if (result.length === 0) problems.push(`${q.panel}: no series from ${q.expr}`);
      const legendLabels = [...q.legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]!);
      for (const label of legendLabels) {
        if (result.some((r) => r.metric[label] === undefined)) problems.push(`${q.panel}: a series of ${q.expr} has no ${label} label`);
      }
    }
    expect(problems).toEqual([]);
    for (const name of variableMetrics) expect((await query(`count(${name})`)).length).toBe(1);

    // Every rule has been evaluated, without error.
    await waitFor(
      async () => {
        const body = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: { health: string }[] }[] } };
        const rules = body.data.groups.flatMap((g) => g.rules);
        return rules.length === alertRules.groups.flatMap((g) => g.rules).length && rules.every((r) => r.health === "ok");
      },
      10_000,
      "every rule evaluated",
    );
    const body = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    for (const r of body.data.groups.flatMap((g) => g.rules)) expect(`${r.name}: ${r.health} ${r.lastError ?? ""}`.trim()).toBe(`${r.name}: ok`);
    // A healthy node raises nothing (TouchlineNoNodes may pend until the first scrape; it is gone by now).
    expect(await activeAlerts()).toEqual([]);
  });

  test.skipIf(!hasPrometheus)("losing NATS, then the node, raises the alerts meant for them", async () => {
    expect(prometheus).toBeDefined();
    const instance = `127.0.0.1:${node.port}`;
    const raised = async (alertname: string): Promise<boolean> =>
      (await activeAlerts()).some((a) => a.labels.alertname === alertname && a.labels.instance === instance);

    await nats.stop();
    await waitFor(() => raised("TouchlineNatsDisconnected"), 10_000, "TouchlineNatsDisconnected pending");
    await node.kill();
    await waitFor(() => raised("TouchlineNodeDown"), 10_000, "TouchlineNodeDown pending");
    const names = (await activeAlerts()).map((a) => a.labels.alertname).sort();
    // Down is down: the NATS alert goes with the node's series, and only down-node alerts remain.
    expect(names.every((n) => ["TouchlineNodeDown", "TouchlineNoNodes", "TouchlineNatsDisconnected"].includes(n!))).toBe(true);
  });
});
