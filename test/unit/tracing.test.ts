import { afterEach, describe, expect, test } from "bun:test";
import { ROOT_CONTEXT, SpanKind, context, propagation, trace } from "@opentelemetry/api";
import { createLogger } from "../../src/telemetry/logger";
import { extractTraceContext, initTracing, injectTraceHeaders } from "../../src/telemetry/tracing";
import { readTracingEnv } from "../../src/config/tracingSettings";
import { type OtlpReceiver, startOtlpReceiver } from "../helpers/otlpReceiver";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

/** process.env entries this file sets, put back after each test (bun runs test files in one process). */
const TOUCHED_ENV = [
  "OTEL_SDK_DISABLED",
  "OTEL_TRACES_EXPORTER",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_SERVICE_NAME",
  "OTEL_RESOURCE_ATTRIBUTES",
  "OTEL_TRACES_SAMPLER",
  "OTEL_TRACES_SAMPLER_ARG",
] as const;
const savedEnv = Object.fromEntries(TOUCHED_ENV.map((k) => [k, process.env[k]]));

let receiver: OtlpReceiver | undefined;
let shutdownTracing: (() => Promise<void>) | undefined;

afterEach(async () => {
  await shutdownTracing?.();
  shutdownTracing = undefined;
  await receiver?.stop();
  receiver = undefined;
  for (const k of TOUCHED_ENV) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

function clearOtelEnv(): void {
  for (const k of TOUCHED_ENV) delete process.env[k];
}

/** Starts a receiver and points the env at it; returns the receiver. */
async function exportingTo(extraEnv: Record<string, string> = {}): Promise<OtlpReceiver> {
  clearOtelEnv();
  receiver = await startOtlpReceiver();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  Object.assign(process.env, extraEnv);
  return receiver;
}

function headerMap(): { headers: Map<string, string>; set: (k: string, v: string) => void; get: (k: string) => string | undefined } {
  const headers = new Map<string, string>();
  return { headers, set: (k, v) => headers.set(k, v), get: (k) => headers.get(k) };
}

describe("readTracingEnv", () => {
  test("disabled without an endpoint, or when switched off", () => {
    expect(readTracingEnv({}).enabled).toBe(false);
    expect(readTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "  " }).enabled).toBe(false);
    const url = "http://collector:4318";
    expect(readTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_SDK_DISABLED: "TRUE" })).toEqual({
      enabled: false,
      reason: "OTEL_SDK_DISABLED=true",
    });
    expect(readTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_TRACES_EXPORTER: "none" }).enabled).toBe(false);
  });

  test("enabled by either endpoint; the traces one is used as is, the general one gets /v1/traces", () => {
    expect(readTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/" })).toMatchObject({
      enabled: true,
      endpoint: "http://c:4318/v1/traces",
      sampler: "parentbased_always_on",
      samplerRatio: 1,
      batch: {},
    });
    expect(readTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:1/x" })).toMatchObject({
      enabled: true,
      endpoint: "http://t:1/x",
    });
  });

  test("reads the sampler, its ratio and the batch settings", () => {
    const env = readTracingEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_TRACES_SAMPLER: "ParentBased_TraceIdRatio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      OTEL_BSP_SCHEDULE_DELAY: "200",
      OTEL_BSP_MAX_QUEUE_SIZE: "4096",
    });
    expect(env).toMatchObject({
      sampler: "parentbased_traceidratio",
      samplerRatio: 0.25,
      batch: { scheduledDelayMillis: 200, maxQueueSize: 4096 },
    });
    // The argument only matters to the ratio samplers.
    expect(readTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_TRACES_SAMPLER: "always_off", OTEL_TRACES_SAMPLER_ARG: "x" })).toMatchObject({
      sampler: "always_off",
      samplerRatio: 1,
    });
  });

  test("malformed values throw naming the variable", () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" };
    const cases: [Record<string, string>, RegExp][] = [
      [{ OTEL_TRACES_SAMPLER: "jaeger_remote" }, /^invalid OTEL_TRACES_SAMPLER: must be/],
      [{ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "1.5" }, /^invalid OTEL_TRACES_SAMPLER_ARG: must be/],
      [{ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "half" }, /^invalid OTEL_TRACES_SAMPLER_ARG: must be/],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, /^invalid OTEL_EXPORTER_OTLP_ENDPOINT: must be an http\(s\) URL/],
      [{ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }, /^invalid OTEL_EXPORTER_OTLP_PROTOCOL: must be/],
      [{ OTEL_TRACES_EXPORTER: "zipkin" }, /^invalid OTEL_TRACES_EXPORTER: must be/],
      [{ OTEL_SDK_DISABLED: "yes" }, /^invalid OTEL_SDK_DISABLED: must be/],
      [{ OTEL_BSP_MAX_QUEUE_SIZE: "-1" }, /^invalid OTEL_BSP_MAX_QUEUE_SIZE: must be/],
    ];
    for (const [extra, message] of cases) expect(() => readTracingEnv({ ...base, ...extra })).toThrow(message);
    expect(readTracingEnv({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" }).enabled).toBe(true);
  });
});

describe("initTracing without an endpoint", () => {
  test("installs nothing and returns a no-op tracer", async () => {
    clearOtelEnv();
    const tracing = initTracing({ nodeId: "node-a", settings: readTracingEnv(process.env) });
    shutdownTracing = tracing.shutdown;
    expect(tracing.enabled).toBe(false);
    const span = tracing.tracer.startSpan("noop");
    expect(span.isRecording()).toBe(false);
    span.end();
    const { headers, set } = headerMap();
    injectTraceHeaders(set, trace.setSpan(ROOT_CONTEXT, span));
    expect(headers.size).toBe(0);
    const extracted = extractTraceContext(() => "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ROOT_CONTEXT);
    expect(trace.getSpanContext(extracted)).toBeUndefined();
  });
});

describe("initTracing with an OTLP endpoint", () => {
  test("exports a parent and a child joined through injected/extracted headers as one trace", async () => {
    const otlp = await exportingTo();
    const tracing = initTracing({ nodeId: "node-a", settings: readTracingEnv(process.env) });
    shutdownTracing = tracing.shutdown;
    expect(tracing.enabled).toBe(true);
    const { headers, set, get } = headerMap();
    const logged: string[] = [];
    const log = createLogger({ nodeId: "node-a", level: "info", write: (line) => logged.push(line) });

    let parentTraceId = "";
    tracing.tracer.startActiveSpan("publish", { kind: SpanKind.PRODUCER, attributes: { "touchline.match": "m1" } }, (parent) => {
      parentTraceId = parent.spanContext().traceId;
      injectTraceHeaders(set);
      parent.end();
    });
    const traceparent = headers.get("traceparent") ?? "";
    expect(traceparent).toMatch(TRACEPARENT);
    expect(TRACEPARENT.exec(traceparent)?.[1]).toBe(parentTraceId);

    // The receiving side: a fresh root context, the headers the only link.
    const remote = extractTraceContext(get, ROOT_CONTEXT);
    const child = tracing.tracer.startSpan("deliver", { kind: SpanKind.CONSUMER }, remote);
    await context.with(trace.setSpan(remote, child), async () => {
      await Bun.sleep(1); // context must survive an await
      log.info("delivered");
    });
    child.end();

    await tracing.shutdown();
    await otlp.waitFor((spans) => spans.length >= 2);
    const publish = otlp.spans.find((s) => s.name === "publish");
    const deliver = otlp.spans.find((s) => s.name === "deliver");
    expect(publish?.parentSpanId).toBeUndefined();
    expect(publish?.attributes["touchline.match"]).toBe("m1");
    expect(deliver?.traceId).toBe(publish?.traceId ?? "missing");
    expect(deliver?.parentSpanId).toBe(publish?.spanId ?? "missing");
    expect(deliver?.kind).toBe(5); // OTLP SPAN_KIND_CONSUMER
    expect(publish?.serviceName).toBe("touchline");
    expect(publish?.resource["service.instance.id"]).toBe("node-a");
    expect(publish?.scope).toBe("touchline");
    expect(JSON.parse(logged[0] ?? "{}").trace_id).toBe(parentTraceId);

    // Shut down means uninstalled: new spans are no-ops again and nothing propagates.
    expect(trace.getTracer("after").startSpan("late").isRecording()).toBe(false);
    expect(propagation.fields()).toEqual([]);
  });

  test("OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES reach the resource", async () => {
    const otlp = await exportingTo({ OTEL_SERVICE_NAME: "touchline-eu", OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test" });
    const tracing = initTracing({ nodeId: "node-b", settings: readTracingEnv(process.env) });
    shutdownTracing = tracing.shutdown;
    tracing.tracer.startSpan("one").end();
    await tracing.shutdown();
    await otlp.waitFor((spans) => spans.length === 1);
    expect(otlp.spans[0]?.serviceName).toBe("touchline-eu");
    expect(otlp.spans[0]?.resource["deployment.environment"]).toBe("test");
    expect(otlp.spans[0]?.resource["service.instance.id"]).toBe("node-b");
  });

  test("parent-based sampling: ratio 0 drops new traces but keeps a sampled caller's trace", async () => {
    const otlp = await exportingTo({ OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0" });
    const tracing = initTracing({ nodeId: "node-a", settings: readTracingEnv(process.env) });
    shutdownTracing = tracing.shutdown;
    const root = tracing.tracer.startSpan("new-trace");
    expect(root.isRecording()).toBe(false);
    root.end();
    const callerTraceId = "0af7651916cd43dd8448eb211c80319c";
    const remote = extractTraceContext((k) => (k === "traceparent" ? `00-${callerTraceId}-b7ad6b7169203331-01` : undefined));
    tracing.tracer.startSpan("continued", {}, remote).end();
    await tracing.shutdown();
    await otlp.waitFor((spans) => spans.length >= 1);
    expect(otlp.spans.map((s) => [s.name, s.traceId, s.parentSpanId])).toEqual([["continued", callerTraceId, "b7ad6b7169203331"]]);
  });

  test("always_off exports nothing", async () => {
    const otlp = await exportingTo({ OTEL_TRACES_SAMPLER: "always_off" });
    const tracing = initTracing({ nodeId: "node-a", settings: readTracingEnv(process.env) });
    shutdownTracing = tracing.shutdown;
    tracing.tracer.startSpan("dropped").end();
    await tracing.shutdown();
    expect(otlp.requests).toBe(0);
    expect(otlp.spans).toHaveLength(0);
  });

  test("a second init while one is installed is refused, and the first keeps working", async () => {
    const otlp = await exportingTo();
    const first = initTracing({ nodeId: "node-a", settings: readTracingEnv(process.env) });
    shutdownTracing = first.shutdown;
    expect(() => initTracing({ nodeId: "node-a", settings: readTracingEnv(process.env) })).toThrow(/already installed/);
    const { headers, set } = headerMap();
    first.tracer.startActiveSpan("still-works", (span) => {
      injectTraceHeaders(set);
      span.end();
    });
    expect(headers.get("traceparent")).toMatch(TRACEPARENT);
    await first.shutdown();
    await otlp.waitFor((spans) => spans.some((s) => s.name === "still-works"));
  });

  test("an unreachable collector never fails shutdown: it is bounded and reported to the log", async () => {
    clearOtelEnv();
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const deadUrl = `http://127.0.0.1:${closed.port}`;
    await closed.stop(true);
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = deadUrl;
    const warnings: string[] = [];
    const shutdownTimeoutMs = 300;
    const tracing = initTracing({
      nodeId: "node-a",
      settings: readTracingEnv(process.env),
      shutdownTimeoutMs,
      log: { warn: (msg) => warnings.push(msg) },
    });
    shutdownTracing = tracing.shutdown;
    tracing.tracer.startSpan("lost").end();
    const started = performance.now();
    await tracing.shutdown();
    expect(performance.now() - started).toBeLessThan(shutdownTimeoutMs * 5);
    expect(warnings).toContain("opentelemetry: spans not delivered at shutdown");
  });
});
