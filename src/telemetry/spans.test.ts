/**
 * The span helpers on their own: with tracing off nothing is built (no span, no wrapper, no header);
 * with it on, the HTTP span continues a caller's trace and is active for the handler, and trace
 * context survives a round trip through NATS headers.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ROOT_CONTEXT, context, trace } from "@opentelemetry/api";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { traceContextOf, traceHeaders } from "../bus/natsTraceHeaders.ts";
import { tracedRoute } from "./httpSpan.ts";
import { MatchSpans } from "./matchSpans.ts";
import { ATTR, HTTP_ROUTE_PUBLISH, SPAN } from "./spanNames.ts";
import { TRACING_OFF } from "./spans.ts";
import { type Tracing, initTracing } from "./tracing.ts";
import { readTracingEnv } from "../config/tracingSettings.ts";
import { type OtlpReceiver, startOtlpReceiver } from "../../test/helpers/otlpReceiver.ts";

const OTEL_ENV = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_TRACES_SAMPLER"] as const;
const savedEnv = Object.fromEntries(OTEL_ENV.map((k) => [k, process.env[k]]));
const CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN = "b7ad6b7169203331";
const HTTP_SERVER_ERROR = 503;
const KIND_SERVER = 2;
const STATUS_ERROR = 2;

let tracing: Tracing | undefined;
let receiver: OtlpReceiver | undefined;

afterEach(async () => {
  await tracing?.shutdown();
  tracing = undefined;
  await receiver?.stop();
  receiver = undefined;
  for (const k of OTEL_ENV) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

async function tracingOn(): Promise<{ tracing: Tracing; receiver: OtlpReceiver }> {
  for (const k of OTEL_ENV) delete process.env[k];
  receiver = await startOtlpReceiver();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  tracing = initTracing({ nodeId: "unit", settings: readTracingEnv(process.env) });
  return { tracing, receiver };
}

type PublishCtx = { request: Request; params: { match: string } };
const publishRoute = { method: "POST", route: HTTP_ROUTE_PUBLISH, attributes: (p: { match: string }) => ({ [ATTR.match]: p.match }) };

describe("tracing off", () => {
  test("the match actor's span starters build nothing", () => {
    const spans = new MatchSpans(TRACING_OFF);
    expect(spans.enabled).toBe(false);
    expect(spans.startIngest("m", 1, undefined)).toBeUndefined();
    expect(spans.startFeedPublish("m", 1, 1, undefined)).toBeUndefined();
    expect(spans.startFanOut("m", 1, "follower", undefined)).toBeUndefined();
    expect(spans.startSubscribe("m", undefined, "owner")).toBeUndefined();
    expect(spans.startReplay("m", "memory", 0, 1, undefined)).toBeUndefined();
  });

  test("a route is served by its own handler, unwrapped", () => {
    const handler = async (_ctx: PublishCtx) => new Response("ok");
    expect(tracedRoute(TRACING_OFF, publishRoute, handler)).toBe(handler);
  });

  test("no propagator is installed: nothing is written to NATS headers", () => {
    const span = trace.wrapSpanContext({ traceId: CALLER_TRACE, spanId: CALLER_SPAN, traceFlags: 1 });
    expect(traceHeaders(trace.setSpan(ROOT_CONTEXT, span)).keys()).toEqual([]);
  });
});

describe("tracing on", () => {
  test("the HTTP span continues the caller's trace, is active for the handler and marks a 5xx as an error", async () => {
    const { tracing, receiver } = await tracingOn();
    let activeInHandler: string | undefined;
    const route = tracedRoute(tracing, publishRoute, async (_ctx: PublishCtx) => {
      await Bun.sleep(1);
      activeInHandler = trace.getSpanContext(context.active())?.spanId;
      return new Response("busy", { status: HTTP_SERVER_ERROR });
    });
    const request = new Request("http://node/matches/m1/events", {
      method: "POST",
      headers: { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
    });
    expect((await route({ request, params: { match: "m1" } })).status).toBe(HTTP_SERVER_ERROR);
    await tracing.shutdown();
    await receiver.waitFor((spans) => spans.length === 1);
    const [span] = receiver.spans;
    expect(span?.name).toBe(`POST ${HTTP_ROUTE_PUBLISH}`);
    expect(span?.kind).toBe(KIND_SERVER);
    expect([span?.traceId, span?.parentSpanId]).toEqual([CALLER_TRACE, CALLER_SPAN]);
    expect(activeInHandler).toBe(span?.spanId ?? "missing");
    expect(span?.attributes[ATTR.match]).toBe("m1");
    expect(span?.attributes[ATTR.httpStatus]).toBe(HTTP_SERVER_ERROR);
    expect(span?.attributes[ATTR.urlPath]).toBe("/matches/m1/events");
    expect(span?.status.code).toBe(STATUS_ERROR);
  });

  test("trace context round-trips through NATS headers, beside headers already there", async () => {
    const { tracing } = await tracingOn();
    const span = tracing.tracer.startSpan(SPAN.feedPublish);
    const hdrs = natsHeaders();
    hdrs.set("Nats-Msg-Id", "m1:k");
    traceHeaders(trace.setSpan(ROOT_CONTEXT, span), hdrs);
    span.end();
    expect(hdrs.get("Nats-Msg-Id")).toBe("m1:k");
    const carried = trace.getSpanContext(traceContextOf(hdrs) ?? ROOT_CONTEXT);
    expect(carried?.traceId).toBe(span.spanContext().traceId);
    expect(carried?.spanId).toBe(span.spanContext().spanId);
    expect(carried?.isRemote).toBe(true);
    // A message without trace context (a producer publishing straight to NATS) has no parent.
    expect(traceContextOf(natsHeaders())).toBeUndefined();
    expect(traceContextOf(undefined)).toBeUndefined();
  });

  test("a fan-out span records the subscribers reached, under the parent it was given", async () => {
    const { tracing, receiver } = await tracingOn();
    const spans = new MatchSpans(tracing);
    const remote = trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext({ traceId: CALLER_TRACE, spanId: CALLER_SPAN, traceFlags: 1, isRemote: true }));
    spans.startFanOut("m1", 7, "follower", remote)?.end(42);
    await tracing.shutdown();
    await receiver.waitFor((all) => all.length === 1);
    const [fanOut] = receiver.spans;
    expect(fanOut?.name).toBe(SPAN.fanOut);
    expect([fanOut?.traceId, fanOut?.parentSpanId]).toEqual([CALLER_TRACE, CALLER_SPAN]);
    expect(fanOut?.attributes[ATTR.subscribers]).toBe(42);
    expect(fanOut?.attributes[ATTR.eventSeq]).toBe(7);
  });
});
