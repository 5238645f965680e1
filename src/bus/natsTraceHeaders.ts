/**
 * W3C trace context on NATS message headers (`traceparent`, `tracestate`), the standard place any
 * NATS tool or other service looks for it. Used for the events stored in JetStream and for the
 * owner's feed messages, so one publish stays one trace from node to node.
 */
import { type Context, ROOT_CONTEXT } from "@opentelemetry/api";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { extractTraceContext, injectTraceHeaders } from "../telemetry/traceHeaders.ts";

/** Headers carrying `ctx`'s span; adds to `into` when given (JetStream sets its own there too). */
export function traceHeaders(ctx: Context, into: MsgHdrs = natsHeaders()): MsgHdrs {
  injectTraceHeaders((key, value) => into.set(key, value), ctx);
  return into;
}

/**
 * The remote span a message's headers name, as a parent for the receiver's span, or undefined when
 * the message carries none (published by a producer straight to NATS, or by an untraced node).
 * Extraction starts from the root context: what happens to be active on the receiving side is
 * unrelated to the message.
 */
export function traceContextOf(hdrs: MsgHdrs | undefined): Context | undefined {
  if (!hdrs) return undefined;
  const ctx = extractTraceContext((key) => hdrs.get(key) || undefined, ROOT_CONTEXT);
  return ctx === ROOT_CONTEXT ? undefined : ctx;
}
