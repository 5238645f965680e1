/**
 * What a component needs to make spans: the tracer and whether tracing is on. Components check
 * `enabled` before building attributes or contexts, so a node without an OTLP endpoint pays one
 * boolean test per traced operation and allocates nothing for it.
 */
import { type Context, type Span, type SpanOptions, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { TRACER_NAME } from "./tracing.ts";

export interface TracingHandle {
  readonly tracer: Tracer;
  /** False when no exporter is installed (the tracer is the no-op one). */
  readonly enabled: boolean;
}

/** For components built without tracing (tests, tools): the API's no-op tracer, switched off. */
export const TRACING_OFF: TracingHandle = { tracer: trace.getTracer(TRACER_NAME), enabled: false };

/** Marks a span failed with the error that ended its work. */
function recordFailure(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/**
 * A started span and the context that makes it the parent of what happens inside it (passed on
 * explicitly: an actor's mailbox runs in whatever context happened to queue its work).
 */
export class OpenSpan {
  constructor(
    readonly span: Span,
    readonly context: Context,
  ) {}

  static start(tracer: Tracer, name: string, options: SpanOptions, parent: Context): OpenSpan {
    const span = tracer.startSpan(name, options, parent);
    return new OpenSpan(span, trace.setSpan(parent, span));
  }

  end(): void {
    this.span.end();
  }

  fail(err: unknown): void {
    recordFailure(this.span, err);
    this.span.end();
  }
}

/** Ends `span` when `work` settles, recording a rejection; resolves or rejects as `work` does. */
export async function endWhenSettled<T>(span: Span, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    recordFailure(span, err);
    throw err;
  } finally {
    span.end();
  }
}
