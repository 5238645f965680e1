/**
 * An HTTP server span around one route's handler: `{method} {route}`, continuing the caller's trace
 * when the request carries W3C trace context, and active while the handler runs so the work it starts
 * (the JetStream store) becomes its child and its log lines carry its trace id.
 *
 * With tracing off the handler is returned as it is: the route costs nothing extra.
 */
import { type Context, ROOT_CONTEXT, SpanKind, SpanStatusCode, context, trace } from "@opentelemetry/api";
import { ATTR } from "./spanNames.ts";
import type { TracingHandle } from "./spans.ts";
import { endWhenSettled } from "./spans.ts";
import { extractTraceContext } from "./traceHeaders.ts";

/** Responses from here up are the server's fault (OpenTelemetry's HTTP server convention). */
const FIRST_SERVER_ERROR_STATUS = 500;

export interface RouteSpec<P> {
  method: string;
  /** The path template, e.g. `/matches/{match}/events`. */
  route: string;
  /** Attributes known from the path parameters (ids); called only when tracing is on. */
  attributes?: (params: P) => Record<string, string>;
}

/** The W3C trace context a request carries (ROOT_CONTEXT when none); undefined with tracing off, so nothing is read. */
export function callerTraceContext(tracing: TracingHandle, request: Request): Context | undefined {
  if (!tracing.enabled) return undefined;
  return extractTraceContext((key) => request.headers.get(key) ?? undefined, ROOT_CONTEXT);
}

export function tracedRoute<P, C extends { request: Request; params: P }>(
  tracing: TracingHandle,
  spec: RouteSpec<P>,
  handler: (ctx: C) => Promise<Response>,
): (ctx: C) => Promise<Response> {
  if (!tracing.enabled) return handler;
  const name = `${spec.method} ${spec.route}`;
  return (ctx) => {
    const { request } = ctx;
    const caller = callerTraceContext(tracing, request)!;
    const span = tracing.tracer.startSpan(
      name,
      { kind: SpanKind.SERVER, attributes: { [ATTR.httpMethod]: spec.method, [ATTR.httpRoute]: spec.route } },
      caller,
    );
    // What must be worked out per request is worked out only for a span that is kept (none of the
    // samplers reads attributes): most requests are not sampled once tracing samples a ratio.
    if (span.isRecording()) span.setAttributes({ [ATTR.urlPath]: new URL(request.url).pathname, ...spec.attributes?.(ctx.params) });
    const answered = context.with(trace.setSpan(caller, span), () => handler(ctx));
    return endWhenSettled(
      span,
      answered.then((response) => {
        span.setAttribute(ATTR.httpStatus, response.status);
        if (response.status >= FIRST_SERVER_ERROR_STATUS) span.setStatus({ code: SpanStatusCode.ERROR });
        return response;
      }),
    );
  };
}
