/**
 * compose.yaml against cluster/: Docker cannot run here, so this checks that the compose topology and
 * the local one (`bun run cluster`) are the same system. The parts that can run without Docker do run:
 * the NATS servers with compose's own command lines form a JetStream cluster, and haproxy with the
 * config rendered from the shared template balances and health-checks real backends.
 */
import { loadConfig } from "../src/config/config.ts";
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Server, Subprocess } from "bun";
import { HAPROXY_TEMPLATE_PATH, renderLocalHaproxyConfig, templateBlocks } from "../cluster/haproxyConfig.ts";
import { startEntry } from "../cluster/local/entry.ts";
import { freePort, waitFor } from "./helpers/cluster.ts";

const ROOT = resolve(import.meta.dir, "..");
const HAPROXY_IN_IMAGE = "/usr/local/etc/haproxy/haproxy.cfg";
const NODE_PORT = 3000;
const OTLP_HTTP_PORT = 4318;
const OTLP_GRPC_PORT = 4317;
const JAEGER_UI_PORT = 16686;
const PROMETHEUS_PORT = 9090;
const PROMETHEUS_DIR_IN_IMAGE = "/etc/prometheus";
const GRAFANA_PROVISIONING_IN_IMAGE = "/etc/grafana/provisioning";
/** How many nodes compose.yaml, haproxy.cfg and docs/operators.md promise the balancer covers, at least. */
const MIN_BALANCED_NODES = 64;
const NATS_CLIENT_PORT = 4222;
const NATS_CLUSTER_PORT = 6222;
/** The node's default DRAIN is 5 s; compose must let it finish. */
const MIN_STOP_GRACE_S = 10;

type Service = {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string> | string[];
  ports?: (string | { published?: unknown })[];
  expose?: string[];
  volumes?: string[];
  container_name?: string;
  hostname?: string;
  healthcheck?: { test?: string[] | string };
  stop_grace_period?: string;
  depends_on?: string[] | Record<string, unknown>;
};

const compose = Bun.YAML.parse(await Bun.file(join(ROOT, "compose.yaml")).text()) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;
const template = await Bun.file(HAPROXY_TEMPLATE_PATH).text();
const dockerfile = await Bun.file(join(ROOT, "Dockerfile")).text();

function env(s: Service): Record<string, string> {
  if (Array.isArray(s.environment)) return Object.fromEntries(s.environment.map((kv) => [kv.split("=")[0]!, kv.slice(kv.indexOf("=") + 1)]));
  return s.environment ?? {};
}

function arg(command: string[], flag: string): string | undefined {
  const i = command.indexOf(flag);
  return i >= 0 ? command[i + 1] : undefined;
}

const natsNames = Object.keys(services).filter((n) => services[n]!.image?.startsWith("nats:"));
const nodeServices = Object.keys(services).filter((n) => services[n]!.build !== undefined);
const lb = services.lb!;
const jaeger = Object.entries(services).find(([, s]) => s.image?.startsWith("jaegertracing/"));
const prometheus = services.prometheus;
const grafana = services.grafana;
const composeText = await Bun.file(join(ROOT, "compose.yaml")).text();

/** `./host/path:/container/path[:ro]` mounts of a service, as absolute host paths. */
function bindMounts(s: Service): { host: string; target: string; readOnly: boolean }[] {
  return (s.volumes ?? [])
    .filter((v) => v.startsWith("./"))
    .map((v) => {
      const [host, target, mode] = v.split(":");
      return { host: resolve(ROOT, host!), target: target!, readOnly: mode === "ro" };
    });
}

/** Where a path inside a container comes from on the host, through the service's bind mounts. */
function hostPathOf(s: Service, inContainer: string): string | undefined {
  for (const m of bindMounts(s)) {
    if (inContainer === m.target) return m.host;
    if (inContainer.startsWith(`${m.target}/`)) return join(m.host, inContainer.slice(m.target.length + 1));
  }
  return undefined;
}

function yamlAt(path: string): unknown {
  return Bun.YAML.parse(readFileSync(path, "utf8"));
}

function durationSeconds(text: string): number {
  const m = /^(\d+)(s|m)$/.exec(text);
  if (!m) throw new Error(`unexpected duration ${text}`);
  return Number(m[1]) * (m[2] === "m" ? 60 : 1);
}

describe("compose.yaml", () => {
  test("has a three-server NATS cluster, the node service, haproxy, Prometheus, Grafana and Jaeger v2", () => {
    expect(natsNames.sort()).toEqual(["nats1", "nats2", "nats3"]);
    expect(nodeServices).toEqual(["node"]);
    expect(lb.image).toStartWith("haproxy:2.8");
    expect(jaeger).toBeDefined();
    // Jaeger v2 (jaegertracing/jaeger); the v1 all-in-one image's line has reached its end of life.
    expect(jaeger![1].image).toMatch(/^jaegertracing\/jaeger:2\.\d+\.\d+$/);
    expect(prometheus?.image).toMatch(/^prom\/prometheus:v3\.\d+\.\d+$/);
    expect(grafana?.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
  });

  test("every NATS server runs JetStream on its own volume and routes to all the others", () => {
    const names = new Set<string>();
    const volumes = new Set<string>();
    for (const name of natsNames) {
      const cmd = services[name]!.command!;
      expect(cmd).toContain("--jetstream");
      const store = arg(cmd, "--store_dir")!;
      const mount = services[name]!.volumes!.find((v) => v.split(":")[1] === store);
      expect(mount).toBeDefined();
      volumes.add(mount!.split(":")[0]!);
      expect(compose.volumes).toHaveProperty(mount!.split(":")[0]!);
      names.add(arg(cmd, "--name")!);
      expect(arg(cmd, "--cluster_name")).toBe("touchline");
      expect(arg(cmd, "--cluster")).toBe(`nats://0.0.0.0:${NATS_CLUSTER_PORT}`);
      const routes = arg(cmd, "--routes")!.split(",").sort();
      expect(routes).toEqual(natsNames.map((n) => `nats://${n}:${NATS_CLUSTER_PORT}`).sort());
    }
    expect(names.size).toBe(natsNames.length); // JetStream clustering needs a distinct server name each
    expect(volumes.size).toBe(natsNames.length);
  });

  test("the node service is scalable: no fixed host port, no container name, no per-node identity", () => {
    for (const name of nodeServices) {
      const s = services[name]!;
      expect(s.container_name).toBeUndefined();
      expect(s.hostname).toBeUndefined();
      expect(s.ports ?? []).toEqual([]);
      expect(env(s).NODE_ID).toBeUndefined();
      expect(env(s).ADVERTISED_HOST).toBeUndefined();
      expect(s.expose).toContain(String(NODE_PORT));
      expect(durationSeconds(s.stop_grace_period!)).toBeGreaterThanOrEqual(MIN_STOP_GRACE_S);
    }
  });

  test("every node is pointed at all the NATS servers and at Jaeger's OTLP/HTTP port", () => {
    const [jaegerName, jaegerService] = jaeger!;
    // Jaeger v2 reads no v1 variables (COLLECTOR_OTLP_ENABLED); its OTLP receivers are on by default,
    // listening on every interface in the image (JAEGER_LISTEN_HOST).
    expect(env(jaegerService).COLLECTOR_OTLP_ENABLED).toBeUndefined();
    expect(env(jaegerService).JAEGER_LISTEN_HOST).toBe("0.0.0.0");
    expect(jaegerService.expose).toContain(String(OTLP_HTTP_PORT));
    expect(jaegerService.expose).toContain(String(OTLP_GRPC_PORT));
    expect(jaegerService.ports).toContain(`${JAEGER_UI_PORT}:${JAEGER_UI_PORT}`);
    for (const name of nodeServices) {
      const e = env(services[name]!);
      expect(e.NATS_URL!.split(",").sort()).toEqual(natsNames.map((n) => `nats://${n}:${NATS_CLIENT_PORT}`).sort());
      // One copy of the log per NATS server, so the backbone survives losing one.
      expect(Number(e.JETSTREAM_REPLICAS)).toBe(natsNames.length);
      expect(e.OTEL_EXPORTER_OTLP_ENDPOINT).toBe(`http://${jaegerName}:${OTLP_HTTP_PORT}`);
      // The node speaks OTLP/HTTP only (src/telemetry/tracingEnv.ts): nothing may ask it for gRPC.
      expect(e.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/json").toStartWith("http/");
      expect(e.OTEL_SERVICE_NAME).toBe("touchline");
      // Streams rotate so nodes added by --scale take their share (a valid setting of the node's).
      expect(e.MAX_STREAM_AGE).toBe("15m");
      expect(loadConfig({ MAX_STREAM_AGE: e.MAX_STREAM_AGE }).maxStreamAgeMs).toBe(15 * 60_000);
    }
  });

  test("health checks use /readyz: the node service, the image, and haproxy", () => {
    for (const name of nodeServices) {
      const t = services[name]!.healthcheck!.test!;
      expect(Array.isArray(t) ? t.join(" ") : t).toContain(`127.0.0.1:${NODE_PORT}/readyz`);
    }
    expect(dockerfile).toMatch(/^HEALTHCHECK [^\n]*(\\\n[^\n]*)*\/readyz/m);
    expect(template).toMatch(/^\s*option httpchk GET \/readyz\s*$/m);
  });

  test("the load balancer mounts cluster/haproxy.cfg, finds the nodes by DNS and publishes the entry port", () => {
    const mount = lb.volumes!.map((v) => v.split(":")).find(([, target]) => target === HAPROXY_IN_IMAGE);
    expect(mount).toBeDefined();
    expect(resolve(ROOT, mount![0]!)).toBe(HAPROXY_TEMPLATE_PATH);
    // As compose runs it (blocks untouched): Docker DNS, and servers named after the node service.
    const blocks = templateBlocks(template);
    expect(blocks.get("docker-dns")!.join("\n")).toMatch(/nameserver \S+ 127\.0\.0\.11:53/);
    const servers = blocks.get("servers")!.join("\n");
    expect(servers).toMatch(new RegExp(`server-template \\S+ \\d+ ${nodeServices[0]}:${NODE_PORT} check resolvers docker init-addr none`));
    const bindPort = /bind \S*:(\d+)/.exec(blocks.get("entry-bind")!.join("\n"))![1];
    expect(lb.ports).toContain(`${bindPort}:${bindPort}`);
  });

  test("Prometheus scrapes every node through Docker's DNS and loads the alert rules", () => {
    const config = hostPathOf(
      prometheus!,
      arg(
        prometheus!.command!.flatMap((a) => a.split("=")),
        "--config.file",
      )!,
    );
    expect(config).toBe(join(ROOT, "cluster", "prometheus", "prometheus.yml"));
    expect(bindMounts(prometheus!).find((m) => m.target === PROMETHEUS_DIR_IN_IMAGE)?.readOnly).toBe(true);
    const parsed = yamlAt(config!) as {
      rule_files: string[];
      scrape_configs: { job_name: string; metrics_path?: string; dns_sd_configs?: { names: string[]; type: string; port: number }[] }[];
    };
    // Rule files resolve next to prometheus.yml, inside the mounted directory.
    expect(parsed.rule_files).toContain("alerts.yml");
    for (const file of parsed.rule_files) expect(existsSync(join(ROOT, "cluster", "prometheus", file))).toBe(true);
    const job = parsed.scrape_configs.find((j) => j.job_name === "touchline")!;
    expect(job.metrics_path ?? "/metrics").toBe("/metrics");
    expect(job.dns_sd_configs).toEqual([expect.objectContaining({ names: nodeServices, type: "A", port: NODE_PORT })]);
    // The rules select the job by this name.
    expect(readFileSync(join(ROOT, "cluster", "prometheus", "alerts.yml"), "utf8")).toContain('job="touchline"');
    expect(prometheus!.ports).toContain(`${PROMETHEUS_PORT}:${PROMETHEUS_PORT}`);
    expect(compose.volumes).toHaveProperty(prometheus!.volumes!.find((v) => !v.startsWith("./"))!.split(":")[0]!);
  });

  test("Grafana has the Prometheus data source and the Touchline dashboard provisioned", () => {
    const provisioning = bindMounts(grafana!).find((m) => m.target === GRAFANA_PROVISIONING_IN_IMAGE);
    expect(provisioning?.host).toBe(join(ROOT, "cluster", "grafana", "provisioning"));
    const datasourceFiles = readdirSync(join(provisioning!.host, "datasources"));
    const datasources = datasourceFiles.flatMap(
      (f) =>
        (yamlAt(join(provisioning!.host, "datasources", f)) as { datasources: { uid: string; type: string; url: string; isDefault?: boolean }[] }).datasources,
    );
    const ds = datasources.find((d) => d.type === "prometheus")!;
    expect(ds.isDefault).toBe(true);
    expect(ds.url).toBe(`http://prometheus:${PROMETHEUS_PORT}`);
    // The dashboard's data-source variable defaults to this data source.
    const dashboard = JSON.parse(readFileSync(join(ROOT, "cluster", "grafana", "touchline.json"), "utf8")) as {
      templating: { list: { name: string; current?: { value?: string } }[] };
    };
    expect(dashboard.templating.list.find((v) => v.name === "datasource")?.current?.value).toBe(ds.uid);
    // The dashboard provider reads the folder the dashboard file is mounted in.
    const providerFiles = readdirSync(join(provisioning!.host, "dashboards"));
    const providers = providerFiles.flatMap(
      (f) => (yamlAt(join(provisioning!.host, "dashboards", f)) as { providers: { type: string; options: { path: string } }[] }).providers,
    );
    expect(providers).toHaveLength(1);
    const folder = providers[0]!.options.path;
    const mounted = bindMounts(grafana!).filter((m) => m.target.startsWith(`${folder}/`));
    expect(mounted.map((m) => m.host)).toEqual([join(ROOT, "cluster", "grafana", "touchline.json")]);
    expect(env(grafana!).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(mounted[0]!.target);
    for (const m of bindMounts(grafana!)) expect(m.readOnly).toBe(true);
    // Grafana's own port 3000 is published elsewhere: the balancer has 3000.
    expect(grafana!.ports).toEqual(["3001:3000"]);
  });

  test(`the balancer covers at least ${MIN_BALANCED_NODES} nodes, and compose, haproxy.cfg and docs/operators.md say how many`, () => {
    const slots = Number(/server-template \S+ (\d+) /.exec(templateBlocks(template).get("servers")!.join("\n"))![1]);
    expect(slots).toBeGreaterThanOrEqual(MIN_BALANCED_NODES);
    expect(composeText).toContain(`--scale node=6     # up to ${slots}`);
    expect(template).toContain(`for N up to ${slots}`);
    expect(readFileSync(join(ROOT, "docs", "operators.md"), "utf8")).toContain(`up to ${slots} nodes`);
    // One DNS answer carries every node's address (about 16 bytes each).
    const payload = Number(/accepted_payload_size (\d+)/.exec(template)![1]);
    expect(payload).toBeGreaterThanOrEqual(512 + slots * 16);
  });

  test("the Dockerfile builds the node from package.json and src/", () => {
    expect(dockerfile).toMatch(/^FROM oven\/bun:/m);
    expect(dockerfile).toContain("bun install --production");
    expect(dockerfile).toMatch(/^COPY src \.\/src$/m);
    expect(dockerfile).toMatch(/^EXPOSE 3000$/m);
    expect(dockerfile).toContain('CMD ["bun", "run", "src/main.ts"]');
  });
});

describe("haproxy.cfg shared by compose and the local cluster", () => {
  const rendered = renderLocalHaproxyConfig(template, {
    entryHost: "127.0.0.1",
    entryPort: 3000,
    backends: [1, 2, 3].map((i) => ({ name: `node${i}`, host: "127.0.0.1", port: 3000 + i })),
  });

  test("the local config is the template with only the marked blocks replaced", () => {
    const blockLines = new Set([...templateBlocks(template).values()].flat());
    const shared = template.split("\n").filter((l) => !blockLines.has(l) && !/^# (>>>|<<<) /.test(l));
    // Every shared line is in the rendered config, in the same order.
    const out = rendered.split("\n");
    let at = 0;
    for (const line of shared) {
      const found = out.indexOf(line, at);
      expect(found).toBeGreaterThanOrEqual(at);
      at = found + 1;
    }
    expect(rendered).not.toContain("resolvers docker");
    expect(rendered).toContain("    server node2 127.0.0.1:3002 check");
    expect(rendered).toContain("    bind 127.0.0.1:3000");
    for (const timeout of ["client", "server", "tunnel"]) expect(rendered).toMatch(new RegExp(`timeout ${timeout} 1h`));
  });

  test.skipIf(!Bun.which("haproxy"))("haproxy accepts both the compose config and the rendered one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "touchline-haproxy-"));
    try {
      const local = join(dir, "local.cfg");
      await Bun.write(local, rendered);
      for (const file of [HAPROXY_TEMPLATE_PATH, local]) {
        const check = Bun.spawnSync(["haproxy", "-c", "-f", file], { stderr: "pipe", stdout: "pipe" });
        expect(`${file}: ${check.exitCode} ${check.stderr.toString()}`).toBe(`${file}: 0 `);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the local entry port runs what compose runs", () => {
  const stops: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  test.skipIf(!Bun.which("haproxy"))("haproxy from the rendered template spreads connections and drops a node whose /readyz is 503", async () => {
    let bReady = true;
    const backend = (name: string, ready: () => boolean): Server<undefined> => {
      const s = Bun.serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch: (req) => (new URL(req.url).pathname === "/readyz" ? new Response(null, { status: ready() ? 200 : 503 }) : new Response(name)),
      });
      stops.push(() => s.stop(true));
      return s;
    };
    const a = backend("a", () => true);
    const b = backend("b", () => bReady);
    const workDir = mkdtempSync(join(tmpdir(), "touchline-entry-"));
    stops.push(() => rmSync(workDir, { recursive: true, force: true }));
    const entry = await startEntry({
      host: "127.0.0.1",
      port: await freePort(),
      nodes: [
        { name: "node1", host: "127.0.0.1", port: a.port! },
        { name: "node2", host: "127.0.0.1", port: b.port! },
      ],
      workDir,
      prefer: "haproxy",
    });
    stops.push(() => entry.stop());
    expect(await Bun.file(entry.configFile!).text()).toBe(
      renderLocalHaproxyConfig(template, {
        entryHost: "127.0.0.1",
        entryPort: Number(new URL(entry.url).port),
        backends: [
          { name: "node1", host: "127.0.0.1", port: a.port! },
          { name: "node2", host: "127.0.0.1", port: b.port! },
        ],
      }),
    );
    const who = async (): Promise<string> => await (await fetch(`${entry.url}/`, { headers: { connection: "close" } })).text();
    const seen = new Set<string>();
    await waitFor(
      async () => {
        seen.add(await who());
        return seen.size === 2;
      },
      10_000,
      "both backends behind haproxy",
    );
    bReady = false;
    // inter 1s, fall 2: b is out within a few seconds, then every new connection goes to a.
    await waitFor(
      async () => {
        const answers = await Promise.all(Array.from({ length: 6 }, who));
        return answers.every((x) => x === "a");
      },
      10_000,
      "haproxy to stop sending to the unready backend",
    );
  });

  test.skipIf(!Bun.which("nats-server"))("the NATS servers, run with compose's own command lines, form one JetStream cluster", async () => {
    const dir = mkdtempSync(join(tmpdir(), "touchline-natscluster-"));
    const procs: Subprocess[] = [];
    stops.push(async () => {
      for (const p of procs) p.kill("SIGTERM");
      await Promise.all(procs.map((p) => p.exited));
      rmSync(dir, { recursive: true, force: true });
    });
    const ports = Object.fromEntries(
      await Promise.all(natsNames.map(async (n) => [n, { client: await freePort(), cluster: await freePort(), http: await freePort() }] as const)),
    );
    // Docker's names and fixed ports become loopback and free ports; everything else is compose's.
    const localise = (name: string, cmd: string[]): string[] => {
      const out = cmd.map((a) => {
        let v = a;
        for (const n of natsNames) v = v.replaceAll(`nats://${n}:${NATS_CLUSTER_PORT}`, `nats://127.0.0.1:${ports[n]!.cluster}`);
        return v.replace(`nats://0.0.0.0:${NATS_CLUSTER_PORT}`, `nats://127.0.0.1:${ports[name]!.cluster}`);
      });
      out[out.indexOf("--store_dir") + 1] = join(dir, name);
      out[out.indexOf("--http_port") + 1] = String(ports[name]!.http);
      return [...out, "-a", "127.0.0.1", "-p", String(ports[name]!.client)];
    };
    for (const name of natsNames) {
      procs.push(Bun.spawn(["nats-server", ...localise(name, services[name]!.command!)], { stdout: "ignore", stderr: "ignore" }));
    }
    await waitFor(
      async () => {
        const views = await Promise.all(
          natsNames.map(
            async (n) =>
              (await (await fetch(`http://127.0.0.1:${ports[n]!.http}/jsz`)).json()) as {
                meta_cluster?: { name?: string; leader?: string; cluster_size?: number };
              },
          ),
        );
        return views.every((v) => v.meta_cluster?.name === "touchline" && v.meta_cluster.cluster_size === natsNames.length && !!v.meta_cluster.leader);
      },
      20_000,
      "a three-server JetStream cluster with a leader",
    );
  });
});
