/**
 * OpenTelemetry tracing for a node, switched on by the standard environment variables.
 *
 * Without an OTLP endpoint (or with OTEL_SDK_DISABLED=true / OTEL_TRACES_EXPORTER=none) nothing
 * is installed and the API's no-op tracer is returned: spans cost a function call and carry
 * nothing. With one, spans are batched and sent as OTLP/HTTP JSON (the installed exporter's
 * format, which every OTLP/HTTP receiver accepts), context follows async calls through
 * AsyncLocalStorage, and W3C trace context (plus baggage) is the global propagator.
 */
import { type DiagLogger, DiagLogLevel, type Tracer, context, diag, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceAttributesEnvDetector, resourceFromAttributes, detectResources, serviceNameEnvDetector } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import type { SamplerName, TracingEnv } from "./tracingOptions";
import { UnsampledChildren } from "./unsampledChildren";

export { extractTraceContext, injectTraceHeaders } from "./traceHeaders";
export type { HeaderGetter, HeaderSetter } from "./traceHeaders";

/** Instrumentation scope of Touchline's own spans. */
export const TRACER_NAME = "touchline";
const DEFAULT_SERVICE_NAME = "touchline";

const ATTR_SERVICE_NAME = "service.name";
/**
 * How long shutdown waits for the last spans to reach the collector. An unreachable collector
 * makes the exporter retry for several seconds, and a draining node must not wait on it.
 */
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;
const ATTR_SERVICE_INSTANCE_ID = "service.instance.id";
/** The samplers whose name starts so follow the parent's decision (tracingOptions.ts, SAMPLER_NAMES). */
const PARENT_BASED = "parentbased_";

export interface TracingOptions {
  nodeId: string;
  /** Whether and how to export, as the configuration read the OTEL_* variables (config.tracing). */
  settings: TracingEnv;
  /** service.name when OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) does not say; default `touchline`. */
  serviceName?: string;
  /** Where the SDK's own complaints go (an unreachable collector, dropped spans); silent if omitted. */
  log?: { warn(msg: string, fields?: Record<string, unknown>): void };
  /** Upper bound on shutdown's final flush; default DEFAULT_SHUTDOWN_TIMEOUT_MS. */
  shutdownTimeoutMs?: number;
}

export interface Tracing {
  tracer: Tracer;
  /** False when nothing was installed; hot paths may skip building span attributes then. */
  enabled: boolean;
  /**
   * Flushes pending spans (for at most `shutdownTimeoutMs`), then uninstalls the globals.
   * Never rejects: spans that cannot be delivered are reported to `log`. Safe to call twice.
   */
  shutdown(): Promise<void>;
}

function createSampler(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

function diagTo(log: NonNullable<TracingOptions["log"]>): DiagLogger {
  const forward = (message: string, ...args: unknown[]) => log.warn(`opentelemetry: ${message}`, args.length ? { args } : undefined);
  const ignore = () => {};
  return { error: forward, warn: forward, info: ignore, debug: ignore, verbose: ignore };
}

/** Resolves when `work` settles or after `ms`, whichever is first; rejects only if `work` does in time. */
function settleWithin(work: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<void>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`span flush did not finish within ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

function disabled(): Tracing {
  return { tracer: trace.getTracer(TRACER_NAME), enabled: false, shutdown: async () => {} };
}

/**
 * Installs tracing as the settings ask (config/tracingSettings.ts); throws if another tracer provider
 * is already installed globally.
 */
export function initTracing(options: TracingOptions): Tracing {
  const env = options.settings;
  if (!env.enabled) return disabled();

  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: options.serviceName ?? DEFAULT_SERVICE_NAME,
        [ATTR_SERVICE_INSTANCE_ID]: options.nodeId,
      }),
    )
    // The operator's env wins over the code's defaults, and OTEL_SERVICE_NAME over OTEL_RESOURCE_ATTRIBUTES.
    .merge(detectResources({ detectors: [resourceAttributesEnvDetector, serviceNameEnvDetector] }));

  const provider = new TracerProvider({
    resource,
    sampler: createSampler(env.sampler, env.samplerRatio),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), ...env.batch })],
  });

  if (options.log) diag.setLogger(diagTo(options.log), DiagLogLevel.WARN);
  const contextManager = new AsyncLocalStorageContextManager().enable();
  const propagator = new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
  });
  // Each global is undone only if this call installed it, so a refused init leaves others' globals alone.
  const undo: (() => void)[] = [() => contextManager.disable()];
  if (options.log) undo.push(() => diag.disable());
  const uninstall = () => {
    for (const step of undo.splice(0).reverse()) step();
  };
  const install = (installed: boolean, what: string, remove: () => void) => {
    if (!installed) {
      uninstall();
      void provider.shutdown();
      throw new Error(`initTracing: a global OpenTelemetry ${what} is already installed (initTracing called twice?)`);
    }
    undo.push(remove);
  };
  install(trace.setGlobalTracerProvider(provider), "tracer provider", () => trace.disable());
  install(context.setGlobalContextManager(contextManager), "context manager", () => context.disable());
  install(propagation.setGlobalPropagator(propagator), "propagator", () => propagation.disable());

  const flushAndUninstall = async () => {
    try {
      await settleWithin(provider.shutdown(), options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
    } catch (err) {
      options.log?.warn("opentelemetry: spans not delivered at shutdown", { err });
    } finally {
      uninstall();
    }
  };
  let stopping: Promise<void> | undefined;
  const sdkTracer = provider.getTracer(TRACER_NAME);
  return {
    // A parent-based sampler never samples the child of an unsampled span: such starts are answered
    // without the SDK's work (unsampledChildren.ts).
    tracer: env.sampler.startsWith(PARENT_BASED) ? new UnsampledChildren(sdkTracer) : sdkTracer,
    enabled: true,
    shutdown: () => (stopping ??= flushAndUninstall()),
  };
}
