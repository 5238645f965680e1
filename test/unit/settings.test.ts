/**
 * The settings reference (src/config/settings.ts): every variable the node reads is declared once, and
 * the loaders, `--help` and the start-up warnings all follow that declaration.
 */
import { describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { ConfigError, loadConfig, parseDuration } from "../../src/config/config.ts";
import { formatDuration } from "../../src/config/duration.ts";
import { SETTINGS, SETTING_NAMES, shownDefault, type SettingName, type SettingSpec } from "../../src/config/settings.ts";
import { helpText } from "../../src/config/settingsText.ts";
import { editDistance, nearestSetting, strayMessage, strayVariables } from "../../src/config/strayVariables.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const BUN = `${ROOT}node_modules/.bin/bun`;
/** Tracing settings are read only once an endpoint is set; MAX_CONNECTIONS fixed so configs compare equal. */
const BASE = { MAX_CONNECTIONS: "1000", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
const spec = (name: SettingName): SettingSpec => SETTINGS[name];
const load = (env: Record<string, string>) => loadConfig({ ...BASE, ...env });

describe("the declaration", () => {
  test("every setting has a type, a meaning of one line, and a default (declared, derived, or unset)", () => {
    expect(SETTING_NAMES.length).toBeGreaterThanOrEqual(60);
    for (const name of SETTING_NAMES) {
      const s = spec(name);
      expect(name).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(s.meaning.length).toBeGreaterThan(10);
      expect(s.meaning).not.toContain("\n");
      expect(shownDefault(s).length).toBeGreaterThan(0);
      if (s.type === "duration") expect(s.unit).toBe("ms");
    }
  });

  test("recent settings are all declared", () => {
    for (const name of [
      "WINDOW_BYTES",
      "WINDOW_BUDGET_BYTES",
      "SLOW_CLIENT_GRACE",
      "BATCH_MAX_ITEMS",
      "BATCH_MAX_BYTES",
      "DRAIN",
      "DRAIN_NOTICE",
      "MAX_STREAM_AGE",
      "MAX_MATCHES_PER_STREAM",
      "HTTP2",
      "LOG_LEVEL",
      "OTEL_SERVICE_NAME",
    ])
      expect(SETTING_NAMES).toContain(name as SettingName);
  });

  test("a declared default written out gives the same configuration as leaving the variable unset", () => {
    for (const name of SETTING_NAMES) {
      const fallback = spec(name).default;
      if (fallback === undefined || name === "MAX_CONNECTIONS") continue;
      expect({ name, config: load({ [name]: fallback }) }).toEqual({ name, config: load({}) });
    }
  });

  test("defaults the contract fixed stay as they were", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      host: "0.0.0.0",
      nats: { urls: ["nats://127.0.0.1:4222"], auth: undefined, tls: undefined },
      heartbeatMs: 15_000,
      retryMs: 1000,
      retentionMs: 24 * 3_600_000,
      maxMatchesPerStream: 64,
      clientBufferBytes: 1_048_576,
      maxBodyBytes: 65_536,
      batchMaxItems: 1000,
      batchMaxBytes: 1_048_576,
      windowEvents: 2000,
      windowBytes: 1_048_576,
      windowBudgetBytes: 256 * 1_048_576,
      slowClientGraceMs: 3000,
      actorIdleMs: 30_000,
      membershipRenewMs: 1000,
      membershipTtlMs: 5000,
      pollWaitMs: 25_000,
      drainMs: 5000,
      drainNoticeMs: 1000,
      maxStreamAgeMs: Number.POSITIVE_INFINITY,
      collectAfterStreamChurn: 1000,
      namespace: "touchline",
      jetstreamReplicas: 1,
      logLevel: "info",
      serviceName: "touchline",
      jwtSecret: undefined,
    });
    expect(c.maxConnections).toBeGreaterThanOrEqual(1000);
    expect(c.tracing.enabled).toBe(false);
    expect(c.security.http2).toBe(false);
  });
});

describe("durations", () => {
  test("parseDuration: units, or a bare number of milliseconds", () => {
    expect(parseDuration("15s")).toBe(15_000);
    expect(parseDuration("1m")).toBe(60_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("24h")).toBe(86_400_000);
    expect(parseDuration("2d")).toBe(172_800_000);
    expect(parseDuration(" 1500 ")).toBe(1500);
    for (const bad of ["", "soon", "1.5s", "-1s", "15 s", "1w", "s"]) expect(parseDuration(bad)).toBeUndefined();
    expect(formatDuration(90_000)).toBe("90s");
    expect(formatDuration(1500)).toBe("1500ms");
    expect(formatDuration(3_600_000)).toBe("1h");
  });

  test("every time setting takes 1m and 60000 alike, and is read (1m differs from its default)", () => {
    const durations = SETTING_NAMES.filter((n) => spec(n).type === "duration");
    expect(durations).toEqual(expect.arrayContaining(["HEARTBEAT_MS", "RETRY_MS", "MEMBERSHIP_RENEW_MS", "POLL_WAIT", "DRAIN"]));
    for (const name of durations) {
      const withUnit = load({ [name]: "1m" });
      expect({ name, config: withUnit }).toEqual({ name, config: load({ [name]: "60000" }) });
      expect({ name, config: withUnit }).not.toEqual({ name, config: load({}) });
    }
  });

  test("HEARTBEAT_MS=15s, MEMBERSHIP_RENEW_MS=2s, RETRY_MS=500ms: accepted; bare numbers stay milliseconds", () => {
    expect(loadConfig({ HEARTBEAT_MS: "15s" }).heartbeatMs).toBe(15_000);
    expect(loadConfig({ HEARTBEAT_MS: "20000" }).heartbeatMs).toBe(20_000);
    expect(loadConfig({ MEMBERSHIP_RENEW_MS: "2s", MEMBERSHIP_TTL: "10s" })).toMatchObject({ membershipRenewMs: 2000, membershipTtlMs: 10_000 });
    expect(loadConfig({ RETRY_MS: "500ms" }).retryMs).toBe(500);
    expect(loadConfig({ RETRY_MS: "0" }).retryMs).toBe(0);
    expect(loadConfig({ DRAIN: "30s", DRAIN_NOTICE: "2s" })).toMatchObject({ drainMs: 30_000, drainNoticeMs: 2000 });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_BSP_SCHEDULE_DELAY: "2s" }).tracing).toMatchObject({
      batch: { scheduledDelayMillis: 2000 },
    });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_BSP_EXPORT_TIMEOUT: "1500" }).tracing).toMatchObject({
      batch: { exportTimeoutMillis: 1500 },
    });
  });

  test("bounds hold whichever way the time is written", () => {
    expect(() => loadConfig({ HEARTBEAT_MS: "50ms" })).toThrow(/^invalid HEARTBEAT_MS: must be at least 100 ms$/);
    expect(() => loadConfig({ HEARTBEAT_MS: "2h" })).toThrow(/^invalid HEARTBEAT_MS: must be at most 3600000 ms \(1h\)$/);
    expect(() => loadConfig({ RETRY_MS: "61m" })).toThrow(/^invalid RETRY_MS/);
    expect(() => loadConfig({ MEMBERSHIP_RENEW_MS: "2s", MEMBERSHIP_TTL: "3s" })).toThrow(/^invalid MEMBERSHIP_TTL: must be at least 4000 ms/);
    expect(() => loadConfig({ RETENTION: "59s" })).toThrow(/^invalid RETENTION/);
  });

  test("MAX_STREAM_AGE: off by default; off and 0 turn it off; at least 10s", () => {
    expect(loadConfig({}).maxStreamAgeMs).toBe(Number.POSITIVE_INFINITY);
    expect(loadConfig({ MAX_STREAM_AGE: "off" }).maxStreamAgeMs).toBe(Number.POSITIVE_INFINITY);
    expect(loadConfig({ MAX_STREAM_AGE: "0" }).maxStreamAgeMs).toBe(Number.POSITIVE_INFINITY);
    expect(loadConfig({ MAX_STREAM_AGE: "30m" }).maxStreamAgeMs).toBe(1_800_000);
    expect(() => loadConfig({ MAX_STREAM_AGE: "5s" })).toThrow(/^invalid MAX_STREAM_AGE: must be at least 10000 ms/);
  });
});

describe("bad values stop the node naming the variable: invalid NAME: ...", () => {
  const BAD: Partial<Record<SettingSpec["type"], string>> = {
    integer: "lots",
    duration: "soon",
    flag: "maybe",
    choice: "nope",
    number: "half",
    url: "collector:4318",
  };

  test("one bad value of each setting's type", () => {
    let checked = 0;
    for (const name of SETTING_NAMES) {
      const bad = BAD[spec(name).type];
      if (bad === undefined) continue;
      checked++;
      const extra: Record<string, string> = name === "OTEL_TRACES_SAMPLER_ARG" ? { OTEL_TRACES_SAMPLER: "traceidratio" } : {};
      let error: unknown;
      try {
        load({ ...extra, [name]: bad });
      } catch (err) {
        error = err;
      }
      expect({ name, error: error instanceof ConfigError }).toEqual({ name, error: true });
      expect((error as Error).message).toStartWith(`invalid ${name}: `);
    }
    expect(checked).toBeGreaterThan(40);
  });

  test("integers outside their declared bounds", () => {
    for (const name of SETTING_NAMES) {
      const s = spec(name);
      if (s.type !== "integer" || name.startsWith("OTEL_")) continue;
      if (s.min !== undefined && s.min > 0) expect(() => load({ [name]: String(s.min! - 1) })).toThrow(`invalid ${name}: `);
      const max = s.max;
      if (max !== undefined) expect(() => load({ [name]: String(max + 1) })).toThrow(`invalid ${name}: `);
    }
    expect(() => loadConfig({ PORT: "65536" })).toThrow(/^invalid PORT: expected 0\.\.65535, got 65536$/);
  });

  test("text settings keep their own checks", () => {
    expect(() => loadConfig({ NATS_URL: "http://x" })).toThrow(/^invalid NATS_URL/);
    expect(() => loadConfig({ NODE_ID: "a b" })).toThrow(/^invalid NODE_ID/);
    expect(() => loadConfig({ TOUCHLINE_NAMESPACE: "Bad" })).toThrow(/^invalid TOUCHLINE_NAMESPACE/);
    expect(() => loadConfig({ TOUCHLINE_JWT_SECRET: "short" })).toThrow(/^invalid TOUCHLINE_JWT_SECRET/);
    expect(() => loadConfig({ CORS_ORIGINS: "https://x/path" })).toThrow(/^invalid CORS_ORIGINS/);
    expect(() => loadConfig({ TLS_CERT_FILE: "/nonexistent" })).toThrow(/^invalid TLS_KEY_FILE/);
    expect(() => loadConfig({ HTTP2: "true" })).toThrow(/^invalid HTTP2/);
    expect(() => loadConfig({ MAX_MATCHES_PER_STREAM: "1000" })).toThrow(/^invalid MAX_MATCHES_PER_STREAM: a resume of 1000 matches/);
  });

  test("LOG_LEVEL and OTEL_SERVICE_NAME are read here, not by main", () => {
    expect(loadConfig({ LOG_LEVEL: " WARN " }).logLevel).toBe("warn");
    expect(loadConfig({ LOG_LEVEL: "silent" }).logLevel).toBe("silent");
    expect(() => loadConfig({ LOG_LEVEL: "verbose" })).toThrow(/^invalid LOG_LEVEL: expected one of debug, info, warn, error, silent, got "verbose"$/);
    expect(loadConfig({ OTEL_SERVICE_NAME: "scores" }).serviceName).toBe("scores");
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/" }).tracing).toMatchObject({ enabled: true, endpoint: "http://c:4318/v1/traces" });
  });
});

describe("the node reads the environment only through the declaration", () => {
  /** Names read from an env object in the node's sources: env.NAME, env["NAME"], (env, "NAME". */
  const READS = [/\benv\.([A-Z][A-Z0-9_]+)/g, /\benv\[["']([A-Z][A-Z0-9_]+)["']\]/g, /\(env, ["']([A-Z][A-Z0-9_]+)["']/g, /process\.env\.([A-Z][A-Z0-9_]+)/g];
  /** Not the node: the typed client, the browser page, and the command line tools. */
  const NOT_THE_NODE = /^(client|web|cli)\//;

  test("every variable read in src/ is declared", async () => {
    const undeclared: string[] = [];
    let seen = 0;
    for await (const file of new Glob("**/*.ts").scan(`${ROOT}src`)) {
      // Unit tests live beside their modules; what they read (a fuzz seed) is not the node's.
      if (NOT_THE_NODE.test(file) || file.endsWith(".test.ts")) continue;
      const text = await Bun.file(`${ROOT}src/${file}`).text();
      for (const pattern of READS) {
        for (const m of text.matchAll(pattern)) {
          seen++;
          if (!(m[1]! in SETTINGS)) undeclared.push(`${file}: ${m[1]}`);
        }
      }
    }
    expect(seen).toBeGreaterThan(10);
    expect(undeclared).toEqual([]);
  });

  test("outside src/config only main.ts touches process.env (to hand it to the config module)", async () => {
    const readers: string[] = [];
    for await (const file of new Glob("**/*.ts").scan(`${ROOT}src`)) {
      if (NOT_THE_NODE.test(file) || file.startsWith("config/") || file.endsWith(".test.ts")) continue;
      const text = await Bun.file(`${ROOT}src/${file}`).text();
      if (/process\.env|Bun\.env|import\.meta\.env/.test(text)) readers.push(file);
    }
    expect(readers).toEqual(["main.ts"]);
    const main = await Bun.file(`${ROOT}src/main.ts`).text();
    expect([...main.matchAll(/process\.env(\.[A-Z_]+)?/g)].map((m) => m[0])).toEqual(["process.env", "process.env"]);
  });
});

describe("variables that look like settings but are not", () => {
  test("edit distance counts insertions, deletions, substitutions and swaps", () => {
    expect(editDistance("MAX_CONECTIONS", "MAX_CONNECTIONS")).toBe(1);
    expect(editDistance("HAERTBEAT_MS", "HEARTBEAT_MS")).toBe(1);
    expect(editDistance("HOME", "HOST")).toBe(2);
    expect(editDistance("", "ab")).toBe(2);
    expect(nearestSetting("NATS_URLS")).toBe("NATS_URL");
    expect(nearestSetting("POLLWAIT")).toBe("POLL_WAIT");
    expect(nearestSetting("HOME")).toBeUndefined();
    expect(nearestSetting("SOMETHING_ELSE")).toBeUndefined();
  });

  test("near misses, other letter case and undeclared TOUCHLINE_* names are named, once each", () => {
    const env = {
      MAX_CONECTIONS: "5000",
      HEARTBEAT_S: "15",
      heartbeat_ms: "2s",
      TOUCHLINE_JWT_SECRT: "x".repeat(20),
      TOUCHLINE_MAX_CONNECTIONS: "10",
      TOUCHLINE_FOO: "1",
      PORT: "3000",
    };
    expect(strayVariables(env)).toEqual([
      { name: "HEARTBEAT_S", suggestion: "HEARTBEAT_MS" },
      { name: "MAX_CONECTIONS", suggestion: "MAX_CONNECTIONS" },
      { name: "TOUCHLINE_FOO" },
      { name: "TOUCHLINE_JWT_SECRT", suggestion: "TOUCHLINE_JWT_SECRET" },
      { name: "TOUCHLINE_MAX_CONNECTIONS", suggestion: "MAX_CONNECTIONS" },
      { name: "heartbeat_ms", suggestion: "HEARTBEAT_MS" },
    ]);
    expect(strayMessage({ name: "MAX_CONECTIONS", suggestion: "MAX_CONNECTIONS" })).toBe(
      "MAX_CONECTIONS is not a Touchline setting and is ignored: did you mean MAX_CONNECTIONS?",
    );
  });

  test("common variables, OpenTelemetry's own, the tools' and Kubernetes service links are left alone", () => {
    const env = {
      PATH: "/bin",
      HOME: "/root",
      USER: "u",
      SHELL: "/bin/sh",
      PWD: "/",
      OLDPWD: "/",
      TERM: "xterm",
      LANG: "C",
      HOSTNAME: "h",
      TZ: "UTC",
      CI: "true",
      SHLVL: "1",
      _: "/usr/bin/env",
      TMPDIR: "/tmp",
      LC_ALL: "C",
      BUN_INSTALL: "/b",
      BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0",
      NODE_ENV: "production",
      NODE_OPTIONS: "--x",
      npm_config_cache: "/c",
      npm_lifecycle_event: "node",
      npm_package_name: "touchline",
      INIT_CWD: "/w",
      SSL_CERT_FILE: "/etc/ssl/cert.pem",
      SSL_CERT_DIR: "/etc/ssl/certs",
      HTTP_PROXY: "",
      NO_PROXY: "",
      OTEL_RESOURCE_ATTRIBUTES: "a=b",
      OTEL_EXPORTER_OTLP_HEADERS: "k=v",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "1000",
      TOUCHLINE_URL: "http://x",
      TOUCHLINE_TOKEN: "t",
      TOUCHLINE_SERVICE_HOST: "10.0.0.1",
      TOUCHLINE_SERVICE_PORT: "3000",
      TOUCHLINE_SERVICE_PORT_HTTP: "3000",
      TOUCHLINE_PORT: "tcp://10.0.0.1:3000",
      TOUCHLINE_PORT_3000_TCP: "tcp://10.0.0.1:3000",
      TOUCHLINE_PORT_3000_TCP_ADDR: "10.0.0.1",
      TOUCHLINE_PORT_3000_TCP_PORT: "3000",
      TOUCHLINE_PORT_3000_TCP_PROTO: "tcp",
      UNRELATED_THING: "1",
      ...Object.fromEntries(SETTING_NAMES.map((n) => [n, "x"])),
    };
    expect(strayVariables(env)).toEqual([]);
    // A TOUCHLINE_PORT that is not a Kubernetes link is someone's guess at PORT.
    expect(strayVariables({ TOUCHLINE_PORT: "8080" })).toEqual([{ name: "TOUCHLINE_PORT", suggestion: "PORT" }]);
  });
});

describe("--help", () => {
  test("the help text has every setting, its type and its default", () => {
    const text = helpText();
    for (const name of SETTING_NAMES) {
      expect(text).toContain(`\n  ${name}  ${spec(name).type}`);
      expect(text).toContain(`default ${shownDefault(spec(name))}\n      ${spec(name).meaning}\n`);
    }
  });

  /** A TCP listener standing in for NATS: counts who connects. */
  function fakeNats() {
    let connections = 0;
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: () => void connections++, data: () => {} } });
    return { url: `nats://127.0.0.1:${server.port}`, connections: () => connections, stop: () => server.stop(true) };
  }

  async function run(args: string[], env: Record<string, string>, cmd = [BUN, "run", "src/main.ts"]) {
    const child = Bun.spawn([...cmd, ...args], {
      cwd: ROOT,
      env: { PATH: `${ROOT}node_modules/.bin:${process.env.PATH}`, HOME: process.env.HOME ?? "/root", ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    return { stdout, stderr, code };
  }

  test("bun run node --help and -h print every setting and exit 0 without connecting anywhere, even with bad settings", async () => {
    const nats = fakeNats();
    try {
      for (const [args, cmd] of [
        [["--help"], ["bun", "run", "node"]],
        [["-h"], undefined],
        [["--help"], undefined],
      ] as const) {
        const { stdout, stderr, code } = await run([...args], { NATS_URL: nats.url, PORT: "0", HEARTBEAT_MS: "soon" }, cmd ? [...cmd] : undefined);
        expect({ code, stderr: stderr.replace(/^\$ .*\n/m, "") }).toEqual({ code: 0, stderr: "" });
        expect(stdout).toStartWith("touchline: one node of a Touchline cluster");
        for (const name of SETTING_NAMES) expect(stdout).toContain(`  ${name}  `);
      }
      await Bun.sleep(200);
      expect(nats.connections()).toBe(0);
    } finally {
      nats.stop();
    }
  }, 60_000);

  test("without --help the same node does connect (the check above could fail)", async () => {
    const nats = fakeNats();
    const child = Bun.spawn([BUN, "run", "src/main.ts"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", NATS_URL: nats.url, PORT: "0", LOG_LEVEL: "silent" },
      stdout: "ignore",
      stderr: "ignore",
    });
    try {
      const deadline = Date.now() + 20_000;
      while (nats.connections() === 0 && Date.now() < deadline) await Bun.sleep(50);
      expect(nats.connections()).toBeGreaterThan(0);
    } finally {
      child.kill();
      await child.exited;
      nats.stop();
    }
  }, 30_000);

  test("at start-up: one warn line per stray variable; a bad value is one line on stderr and exit code 2", async () => {
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => {} } });
    const deadNats = `nats://127.0.0.1:${closed.port}`;
    closed.stop(true);
    const started = await run([], {
      NATS_URL: deadNats,
      PORT: "0",
      HEARTBEAT_MS: "15s",
      MEMBERSHIP_RENEW_MS: "2s",
      MEMBERSHIP_TTL: "10s",
      MAX_CONECTIONS: "5000",
      TOUCHLINE_FOO: "1",
      NODE_ENV: "production",
      npm_config_cache: "/tmp/x",
      BUN_X: "1",
    });
    const warned = started.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { level: string; msg: string; variable?: string })
      .filter((r) => r.variable !== undefined);
    expect(warned.map((r) => [r.level, r.variable, r.msg])).toEqual([
      ["warn", "MAX_CONECTIONS", "MAX_CONECTIONS is not a Touchline setting and is ignored: did you mean MAX_CONNECTIONS?"],
      ["warn", "TOUCHLINE_FOO", "TOUCHLINE_FOO is not a Touchline setting and is ignored: see `bun run node --help` for the settings"],
    ]);
    // It went on to start (and stopped only because NATS is down): 15s and 2s were accepted.
    expect(started.stdout).toContain('"msg":"could not join the cluster"');

    for (const [env, line] of [
      [{ HEARTBEAT_MS: "soon" }, /^touchline: invalid HEARTBEAT_MS: expected a duration like 24h/],
      [{ LOG_LEVEL: "verbose" }, /^touchline: invalid LOG_LEVEL: /],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_TRACES_SAMPLER: "jaeger" }, /^touchline: invalid OTEL_TRACES_SAMPLER: /],
    ] as const) {
      const { stderr, code } = await run([], { NATS_URL: deadNats, PORT: "0", ...env });
      expect(code).toBe(2);
      expect(stderr).toMatch(line);
      expect(stderr.trim().split("\n")).toHaveLength(1);
    }
  }, 60_000);
});
