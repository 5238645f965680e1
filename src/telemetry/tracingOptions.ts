/**
 * What tracing can be asked for, as the tracer takes it. The config module parses the OpenTelemetry
 * variables into these (config/tracingSettings.ts); telemetry never reads the environment itself.
 */

/** The samplers the OpenTelemetry specification names (OTEL_TRACES_SAMPLER). */
export const SAMPLER_NAMES = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

export type SamplerName = (typeof SAMPLER_NAMES)[number];

/** Batch processor settings, named as `BatchSpanProcessor` takes them; unset ones keep its defaults. */
export interface BatchSettings {
  scheduledDelayMillis?: number;
  exportTimeoutMillis?: number;
  maxQueueSize?: number;
  maxExportBatchSize?: number;
}

export type TracingEnv =
  | { enabled: false; reason: string }
  | {
      enabled: true;
      /** Where spans go, for diagnostics; the exporter derives the same URL from the env. */
      endpoint: string;
      sampler: SamplerName;
      /** Fraction of new traces sampled by the ratio samplers (1 for the others). */
      samplerRatio: number;
      batch: BatchSettings;
    };
