/**
 * With a parent-based sampler (the default, `parentbased_always_on`, and `parentbased_traceidratio`), a
 * span whose parent was not sampled is never sampled either. The SDK still does a whole span start to
 * find that out: it copies and checks the attributes, draws a span id and asks the sampler, and every
 * stored event starts several such spans (the store, the owner's ingest). With a 1% sample, answering
 * them here took about a fifth off what tracing added to a publish in the node (bench/publishCost.ts).
 *
 * This tracer answers those starts itself with the parent's own context wrapped as a non-recording span:
 * the same trace id and the same "not sampled" flag, so whatever it is propagated to stays out of the
 * sample, as the SDK's answer would; nothing is recorded or exported in either case. Only the span id
 * differs (the parent's, not a fresh one), and no one ever sees the ids of a trace that is not kept.
 * Every other start (a root, a sampled parent, `root: true`) goes to the SDK's tracer.
 */
import { type Context, type Span, type SpanOptions, type Tracer, TraceFlags, context, trace } from "@opentelemetry/api";

export class UnsampledChildren implements Tracer {
  constructor(private readonly sdk: Tracer) {}

  startSpan(name: string, options?: SpanOptions, ctx: Context = context.active()): Span {
    if (options?.root !== true) {
      const parent = trace.getSpanContext(ctx);
      if (parent !== undefined && trace.isSpanContextValid(parent) && (parent.traceFlags & TraceFlags.SAMPLED) === 0) return trace.wrapSpanContext(parent);
    }
    return this.sdk.startSpan(name, options, ctx);
  }

  /** The API's other way to start a span, handed to the SDK's tracer as it is (Touchline starts its spans with startSpan). */
  startActiveSpan<F extends (span: Span) => unknown>(...args: [string, F] | [string, SpanOptions, F] | [string, SpanOptions, Context, F]): ReturnType<F> {
    return Reflect.apply(this.sdk.startActiveSpan, this.sdk, args) as ReturnType<F>;
  }
}
