/**
 * UnsampledChildren against the SDK itself (a parent-based sampler, spans kept in memory): the child of an
 * unsampled span is answered without the SDK and is what the SDK would have made of it (not recording, same
 * trace, still unsampled when propagated); everything else is the SDK's, recorded as before.
 */
import { describe, expect, test } from "bun:test";
import { ROOT_CONTEXT, type SpanContext, TraceFlags, type Tracer, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  AlwaysOnSampler,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { UnsampledChildren } from "./unsampledChildren.ts";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID = "b7ad6b7169203331";

function sdk(root: AlwaysOnSampler | TraceIdRatioBasedSampler) {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ sampler: new ParentBasedSampler({ root }), spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const inner = provider.getTracer("test");
  let sdkStarts = 0;
  const counted: Tracer = {
    startSpan: (...args: Parameters<Tracer["startSpan"]>) => {
      sdkStarts++;
      return inner.startSpan(...args);
    },
    startActiveSpan: inner.startActiveSpan.bind(inner),
  };
  return { exporter, tracer: new UnsampledChildren(counted), starts: () => sdkStarts };
}

const parent = (flags: TraceFlags): SpanContext => ({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: flags, isRemote: true });

describe("UnsampledChildren", () => {
  test("the child of an unsampled parent is not recorded, keeps the trace, stays unsampled downstream, and skips the SDK", () => {
    const { exporter, tracer, starts } = sdk(new AlwaysOnSampler());
    const ctx = trace.setSpanContext(ROOT_CONTEXT, parent(TraceFlags.NONE));
    const child = tracer.startSpan("jetstream.store", { attributes: { "touchline.match": "m1" } }, ctx);
    child.setAttribute("touchline.seq", 7);
    child.end();
    expect(child.isRecording()).toBe(false);
    expect(child.spanContext().traceId).toBe(TRACE_ID);
    expect(child.spanContext().traceFlags & TraceFlags.SAMPLED).toBe(0);
    expect(starts()).toBe(0);
    // What is propagated onward from it (as into a stored message's headers) is still "not sampled".
    const carrier: Record<string, string> = {};
    new W3CTraceContextPropagator().inject(trace.setSpan(ctx, child), carrier, { set: (c, k, v) => (c[k] = v) });
    expect(carrier.traceparent).toStartWith(`00-${TRACE_ID}-`);
    expect(carrier.traceparent).toEndWith("-00");
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });

  test("a sampled parent, a new root and root: true go to the SDK and are recorded as before", () => {
    const { exporter, tracer, starts } = sdk(new AlwaysOnSampler());
    const sampled = trace.setSpanContext(ROOT_CONTEXT, parent(TraceFlags.SAMPLED));
    tracer.startSpan("child", {}, sampled).end();
    tracer.startSpan("root", {}, ROOT_CONTEXT).end();
    tracer.startSpan("forced root", { root: true }, trace.setSpanContext(ROOT_CONTEXT, parent(TraceFlags.NONE))).end();
    expect(starts()).toBe(3);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(["child", "root", "forced root"]);
    expect(spans[0]!.spanContext().traceId).toBe(TRACE_ID);
    expect(spans[0]!.parentSpanContext?.spanId).toBe(SPAN_ID);
  });

  test("under a ratio: unsampled roots' children never reach the SDK, sampled roots' children are recorded", () => {
    const { exporter, tracer, starts } = sdk(new TraceIdRatioBasedSampler(0.5));
    let roots = 0;
    let recordedRoots = 0;
    for (let i = 0; i < 200; i++) {
      const root = tracer.startSpan("POST /matches/{match}/events", {}, ROOT_CONTEXT);
      roots++;
      if (root.isRecording()) recordedRoots++;
      const child = tracer.startSpan("jetstream.store", {}, trace.setSpan(ROOT_CONTEXT, root));
      expect(child.isRecording()).toBe(root.isRecording());
      child.end();
      root.end();
    }
    expect(recordedRoots).toBeGreaterThan(0);
    expect(recordedRoots).toBeLessThan(roots);
    // Every root and only the sampled roots' children went through the SDK.
    expect(starts()).toBe(roots + recordedRoots);
    expect(exporter.getFinishedSpans()).toHaveLength(recordedRoots * 2);
  });
});
