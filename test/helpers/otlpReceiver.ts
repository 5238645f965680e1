/**
 * A minimal OTLP/HTTP trace receiver for tests: accepts `POST /v1/traces` in the JSON encoding
 * (what @opentelemetry/exporter-trace-otlp-http sends, gzip or not) and keeps every span,
 * flattened. Protobuf bodies get 415 so a misconfigured exporter fails loudly instead of
 * silently exporting nothing.
 */

export type AttributeValue = string | number | boolean | null | AttributeValue[] | { [key: string]: AttributeValue };

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** undefined for a root span */
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer */
  kind: number;
  serviceName: string | undefined;
  attributes: Record<string, AttributeValue>;
  resource: Record<string, AttributeValue>;
  scope: string | undefined;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: number; message?: string };
}

export interface OtlpReceiver {
  /** Base URL, for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  url: string;
  /** Every span received so far, in arrival order. */
  spans: ReceivedSpan[];
  /** Export requests accepted so far. */
  readonly requests: number;
  /** Resolves once `pred(spans)` holds; rejects after `timeoutMs`, listing what did arrive. */
  waitFor(pred: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const TRACES_PATH = "/v1/traces";
const DEFAULT_WAIT_MS = 5_000;
const HTTP_OK = 200;
const HTTP_BAD_REQUEST = 400;
const HTTP_NOT_FOUND = 404;
const HTTP_UNSUPPORTED_MEDIA_TYPE = 415;

// The OTLP JSON shapes this receiver reads (opentelemetry-proto, JSON mapping).
interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  bytesValue?: string;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: OtlpKeyValue[];
  status?: { code?: number; message?: string };
}
interface OtlpExportRequest {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: { scope?: { name?: string }; spans?: OtlpSpan[] }[];
  }[];
}

function anyValue(v: OtlpAnyValue | undefined): AttributeValue {
  if (v === undefined) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.bytesValue !== undefined) return v.bytesValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.kvlistValue !== undefined) return keyValues(v.kvlistValue.values);
  return null;
}

function keyValues(list: OtlpKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

function flatten(request: OtlpExportRequest): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = keyValues(rs.resource?.attributes);
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : undefined;
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        if (typeof s.traceId !== "string" || typeof s.spanId !== "string" || typeof s.name !== "string") {
          throw new Error("span without traceId, spanId or name");
        }
        spans.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ? s.parentSpanId : undefined,
          name: s.name,
          kind: s.kind ?? 0,
          serviceName,
          attributes: keyValues(s.attributes),
          resource,
          scope: ss.scope?.name,
          startTimeUnixNano: String(s.startTimeUnixNano),
          endTimeUnixNano: String(s.endTimeUnixNano),
          status: { code: s.status?.code ?? 0, ...(s.status?.message ? { message: s.status.message } : {}) },
        });
      }
    }
  }
  return spans;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const waiters = new Set<() => void>();
  let requests = 0;

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method !== "POST" || path !== TRACES_PATH) return new Response("not found", { status: HTTP_NOT_FOUND });
      if (!(req.headers.get("content-type") ?? "").includes("application/json")) {
        return new Response("only OTLP/HTTP JSON is accepted", { status: HTTP_UNSUPPORTED_MEDIA_TYPE });
      }
      try {
        let body = new Uint8Array(await req.arrayBuffer());
        if (req.headers.get("content-encoding") === "gzip") body = Bun.gunzipSync(body);
        spans.push(...flatten(JSON.parse(new TextDecoder().decode(body)) as OtlpExportRequest));
      } catch (err) {
        return new Response(`bad export request: ${err}`, { status: HTTP_BAD_REQUEST });
      }
      requests++;
      for (const wake of [...waiters]) wake();
      // An empty ExportTraceServiceResponse: everything accepted.
      return Response.json({}, { status: HTTP_OK });
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    spans,
    get requests() {
      return requests;
    },
    waitFor(pred, timeoutMs = DEFAULT_WAIT_MS) {
      return new Promise<void>((resolve, reject) => {
        if (pred(spans)) return resolve();
        const timer = setTimeout(() => {
          waiters.delete(check);
          const names = spans.map((s) => s.name).join(", ");
          reject(new Error(`OTLP receiver: condition not met within ${timeoutMs} ms; got ${spans.length} spans [${names}]`));
        }, timeoutMs);
        const check = () => {
          if (!pred(spans)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
    async stop() {
      await server.stop(true);
    },
  };
}
