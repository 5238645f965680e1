/**
 * Carrying trace context across NATS (or any header map) without depending on NATS types:
 * callers pass a setter or getter bound to their own header object.
 *
 * With tracing disabled no propagator is installed, so inject writes nothing and extract hands
 * back the context unchanged: the cost is one function call.
 */
import { type Context, type TextMapGetter, type TextMapSetter, context, propagation } from "@opentelemetry/api";

export type HeaderSetter = (key: string, value: string) => void;
export type HeaderGetter = (key: string) => string | undefined;

const callbackSetter: TextMapSetter<HeaderSetter> = {
  set(setter, key, value) {
    setter(key, value);
  },
};

const callbackGetter: TextMapGetter<HeaderGetter> = {
  get(getter, key) {
    return getter(key);
  },
  // The W3C trace-context and baggage propagators look keys up by name and never list them.
  keys() {
    return [];
  },
};

/** Writes `traceparent` (and `tracestate`, `baggage` when present) for `ctx`, the active context by default. */
export function injectTraceHeaders(setter: HeaderSetter, ctx: Context = context.active()): void {
  propagation.inject(ctx, setter, callbackSetter);
}

/** The context carried by the headers, on top of `ctx` (the active context by default). */
export function extractTraceContext(getter: HeaderGetter, ctx: Context = context.active()): Context {
  return propagation.extract(ctx, getter, callbackGetter);
}
