import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ROOT_CONTEXT, TraceFlags, context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { type LogLevel, createLogger, parseLogLevel } from "../../src/telemetry/logger";

/** A logger writing into an array, and the lines parsed back. */
function capture(level: LogLevel = "debug", nodeId = "node-a") {
  const raw: string[] = [];
  const log = createLogger({ nodeId, level, write: (line) => raw.push(line) });
  const records = () => raw.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { log, raw, records };
}

describe("parseLogLevel", () => {
  test("defaults to info when unset or empty", () => {
    expect(parseLogLevel(undefined)).toBe("info");
    expect(parseLogLevel("")).toBe("info");
  });

  test("accepts the five levels, case-insensitively", () => {
    expect(parseLogLevel("debug")).toBe("debug");
    expect(parseLogLevel(" WARN ")).toBe("warn");
    expect(parseLogLevel("Error")).toBe("error");
    expect(parseLogLevel("silent")).toBe("silent");
  });

  test("refuses anything else, naming the variable", () => {
    expect(() => parseLogLevel("verbose")).toThrow(/^LOG_LEVEL must be one of debug, info, warn, error, silent/);
  });
});

describe("createLogger", () => {
  test("writes one JSON object per line with ts, level, node, msg, then the fields", () => {
    const { log, raw, records } = capture();
    const before = Date.now();
    log.info("stream opened", { match: "m1", subscribers: 3 });
    expect(raw).toHaveLength(1);
    expect(raw[0]?.endsWith("\n")).toBe(true);
    const record = records()[0] ?? {};
    expect(Object.keys(record)).toEqual(["ts", "level", "node", "msg", "match", "subscribers"]);
    expect(record).toMatchObject({ level: "info", node: "node-a", msg: "stream opened", match: "m1", subscribers: 3 });
    const ts = Date.parse(String(record.ts));
    expect(new Date(ts).toISOString()).toBe(String(record.ts));
    expect(ts).toBeGreaterThanOrEqual(before - 1);
    expect(ts).toBeLessThanOrEqual(Date.now() + 1);
  });

  test("a message with line feeds stays on one line", () => {
    const { log, raw, records } = capture();
    log.warn("two\nlines", { detail: "a\nb" });
    expect(raw[0]?.indexOf("\n")).toBe((raw[0]?.length ?? 0) - 1);
    expect(records()[0]?.msg).toBe("two\nlines");
  });

  test("lines below the level are dropped; silent drops all", () => {
    const warn = capture("warn");
    warn.log.debug("d");
    warn.log.info("i");
    warn.log.warn("w");
    warn.log.error("e");
    expect(warn.records().map((r) => r.level)).toEqual(["warn", "error"]);

    const silent = capture("silent");
    for (const level of ["debug", "info", "warn", "error"] as const) silent.log[level]("x");
    expect(silent.raw).toHaveLength(0);
  });

  test("errors keep name, message, stack, own fields and cause", () => {
    const { log, records } = capture();
    const cause = new Error("socket closed");
    const err = Object.assign(new TypeError("publish failed", { cause }), { code: "E_PUB" });
    log.error("publish failed", { err });
    const logged = records()[0]?.err as Record<string, unknown>;
    expect(logged.name).toBe("TypeError");
    expect(logged.message).toBe("publish failed");
    expect(String(logged.stack)).toContain("publish failed");
    expect(String(logged.stack)).toContain("logger.test.ts");
    expect(logged.code).toBe("E_PUB");
    expect((logged.cause as Record<string, unknown>).message).toBe("socket closed");
  });

  test("never throws: cycles, bigint, symbols, non-finite numbers, throwing getters", () => {
    const { log, records } = capture();
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const shared = { n: 1 };
    const getterBomb = Object.defineProperty({}, "boom", {
      enumerable: true,
      get() {
        throw new Error("getter exploded");
      },
    });
    const fields = {
      cyclic,
      pair: [shared, shared],
      big: 2n ** 70n,
      sym: Symbol("s"),
      nan: NaN,
      inf: -Infinity,
      getterBomb,
      when: new Date(0),
      seen: new Set(["a"]),
      byKey: new Map([["k", 1]]),
      bytes: new Uint8Array(4),
      fn: function handler() {},
      nothing: undefined,
    };
    expect(() => log.info("odd fields", fields)).not.toThrow();
    const r = records()[0] ?? {};
    expect(r.cyclic).toEqual({ name: "loop", self: "[Circular]" });
    // The same object twice is not a cycle.
    expect(r.pair).toEqual([{ n: 1 }, { n: 1 }]);
    expect(r.big).toBe("1180591620717411303424");
    expect(r.sym).toBe("Symbol(s)");
    expect(r.nan).toBe("NaN");
    expect(r.inf).toBe("-Infinity");
    expect(r.getterBomb).toEqual({ boom: "[Unreadable]" });
    expect(r.when).toBe("1970-01-01T00:00:00.000Z");
    expect(r.seen).toEqual(["a"]);
    expect(r.byKey).toEqual({ k: 1 });
    expect(r.bytes).toBe("[Uint8Array 4 bytes]");
    expect(r.fn).toBe("[Function handler]");
    expect("nothing" in r).toBe(false);
  });

  test("never throws: hostile proxies, odd messages, a failing sink", () => {
    const { log, records } = capture();
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("no keys for you");
        },
      },
    );
    expect(() => log.info("proxy field", { hostile })).not.toThrow();
    expect(() => log.info("proxy fields", hostile as Record<string, unknown>)).not.toThrow();
    const unprintable = {
      toString() {
        throw new Error("nope");
      },
    };
    expect(() => log.info(unprintable as unknown as string)).not.toThrow();
    const [first, second, third] = records();
    expect(first?.hostile).toBe("[Unserialisable]");
    expect(second?.msg).toBe("proxy fields");
    expect(String(second?.log_error)).toContain("no keys for you");
    expect(third?.msg).toBe("[unprintable]");

    const failing = createLogger({
      nodeId: "n",
      level: "info",
      write: () => {
        throw new Error("EPIPE");
      },
    });
    expect(() => failing.error("nobody listens")).not.toThrow();
  });

  test("fields named like the logger keys do not overwrite them", () => {
    const { log, records } = capture();
    log.info("real message", { msg: "impostor", level: "error", ts: 1 });
    expect(records()[0]).toMatchObject({ msg: "real message", level: "info", field_msg: "impostor", field_level: "error", field_ts: 1 });
  });

  test("child loggers add bound fields; the call fields win", () => {
    const { log, records } = capture();
    const child = log.child({ component: "bus", match: "m0" });
    child.info("hello", { match: "m1" });
    log.info("parent");
    const [fromChild, fromParent] = records();
    expect(fromChild).toMatchObject({ component: "bus", match: "m1" });
    expect(fromParent?.component).toBeUndefined();
  });

  test("writes to stdout by default", () => {
    const script = `import { createLogger } from ${JSON.stringify(`${import.meta.dir}/../../src/telemetry/logger.ts`)}
createLogger({ nodeId: 'node-z', level: 'info' }).info('to stdout', { n: 1 })`;
    const proc = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect(proc.stderr.toString()).toBe("");
    const lines = proc.stdout.toString().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? "")).toMatchObject({ level: "info", node: "node-z", msg: "to stdout", n: 1 });
  });
});

describe("trace correlation", () => {
  const contextManager = new AsyncLocalStorageContextManager();
  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
  });
  afterAll(() => {
    context.disable();
  });

  test("adds trace_id while a span context is active, and none outside it", async () => {
    const { log, records } = capture();
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    const active = trace.setSpanContext(ROOT_CONTEXT, {
      traceId,
      spanId: "b7ad6b7169203331",
      traceFlags: TraceFlags.SAMPLED,
    });
    await context.with(active, async () => {
      await Bun.sleep(1);
      log.info("inside", { after: "await" });
    });
    log.info("outside");
    const [inside, outside] = records();
    expect(Object.keys(inside ?? {}).at(-1)).toBe("trace_id");
    expect(inside?.trace_id).toBe(traceId);
    expect(outside?.trace_id).toBeUndefined();
  });
});
