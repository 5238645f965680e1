/**
 * The API description (src/http/openapi.ts, served at GET /openapi.json, kept as docs/openapi.json)
 * against the node itself:
 * - its paths and methods are exactly the routes the app registers (Elysia's `app.routes`, from an app
 *   built in-process), and the 405 table allows exactly the documented methods on each path;
 * - a real node serves it, and docs/openapi.json is the same document;
 * - the node's real answers (publish, duplicate, 409, batch and its 400, listings, polls, cluster, owner,
 *   health, readiness) and the data of every stream event (snapshot, event, hello, ping, end, refused)
 *   fit the schemas the document gives for them.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/http/app.ts";
import { loadConfig } from "../../src/config/config.ts";
import { MetricsRegistry } from "../../src/telemetry/metrics.ts";
import { createNodeMetrics } from "../../src/telemetry/nodeMetrics.ts";
import { createLogger } from "../../src/telemetry/logger.ts";
import { createNodeAuth } from "../../src/auth/nodeAuth.ts";
import { Cors } from "../../src/http/cors.ts";
import type { TouchlineNode } from "../../src/node/touchlineNode.ts";
import type { StreamRegistry } from "../../src/stream/streamRegistry.ts";
import { openApiDocument, openApiText } from "../../src/http/openapi.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse } from "../helpers/sse.ts";
import { unresolvedRefs, validate } from "../helpers/jsonSchema.ts";
import { publishOk, uniqueMatch } from "./touchlineApi.ts";

type Doc = Record<string, any>;
const ROOT = join(import.meta.dir, "..", "..");
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const doc = openApiDocument() as Doc;

function documentedRoutes(d: Doc): string[] {
  const out: string[] = [];
  for (const [path, item] of Object.entries(d.paths as Record<string, Record<string, unknown>>)) {
    for (const m of METHODS) if (m in item) out.push(`${m.toUpperCase()} ${path}`);
  }
  return out.sort();
}

/** The schema of an answer, by path, method, status and media type. */
function answerSchema(path: string, method: string, status: number, media = "application/json"): Record<string, unknown> {
  const response = doc.paths[path]?.[method]?.responses?.[String(status)];
  if (!response) throw new Error(`the document has no ${status} answer for ${method.toUpperCase()} ${path}`);
  const schema = response.content?.[media]?.schema;
  if (!schema) throw new Error(`the ${status} answer of ${method.toUpperCase()} ${path} has no ${media} schema`);
  return schema;
}

function expectFits(schema: Record<string, unknown>, value: unknown, what: string): void {
  const problems = validate(doc, schema, value);
  if (problems.length > 0) throw new Error(`${what} does not fit the document: ${problems.join("; ")}\n${JSON.stringify(value).slice(0, 500)}`);
}

async function expectAnswer(res: Response, path: string, method: string, status: number): Promise<any> {
  const body = await res.json();
  expect({ status: res.status, body }).toMatchObject({ status, body: expect.anything() });
  expectFits(answerSchema(path, method, status), body, `${method.toUpperCase()} ${path} ${status}`);
  return body;
}

describe("the document", () => {
  test("is OpenAPI 3.1 with every $ref resolving and every path parameter declared", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(unresolvedRefs(doc)).toEqual([]);
    for (const [path, item] of Object.entries(doc.paths as Record<string, any>)) {
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const m of METHODS.filter((m) => m in item)) {
        const op = item[m];
        const declared = [...(item.parameters ?? []), ...(op.parameters ?? [])].filter((p: any) => p.in === "path").map((p: any) => p.name);
        expect({ route: `${m} ${path}`, params: declared.sort() }).toEqual({ route: `${m} ${path}`, params: inPath.sort() });
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
        expect(typeof op.operationId).toBe("string");
      }
    }
  });

  test("docs/openapi.json is the same document (regenerate: npx bun src/http/openapi.ts --write)", () => {
    const file = readFileSync(join(ROOT, "docs", "openapi.json"), "utf8");
    expect(file).toBe(openApiText());
  });

  test("describes exactly the routes the app registers", async () => {
    const config = loadConfig({});
    const metricsRegistry = new MetricsRegistry();
    // Building the app registers its routes and touches nothing else of the node.
    const app = createApp({
      node: { config, tracing: { enabled: false } } as unknown as TouchlineNode,
      registry: {} as StreamRegistry,
      metricsRegistry,
      metrics: createNodeMetrics(metricsRegistry),
      logger: createLogger({ nodeId: "openapi-test", level: "error" }),
      auth: await createNodeAuth(config, () => true),
      cors: new Cors([]),
    });
    const registered = app.routes.map((r) => `${r.method.toUpperCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`).sort();
    expect(registered.length).toBeGreaterThan(10);
    expect(documentedRoutes(doc)).toEqual(registered);
  });
});

describe("a real node", () => {
  const { node } = useNode({ env: { HEARTBEAT_MS: "300" } });

  test("serves the document at /openapi.json", async () => {
    const res = await fetch(`${node.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toEqual(JSON.parse(openApiText()));
  });

  test("answers a wrong method with 405 allowing exactly the documented methods, on every path", async () => {
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      const url = node.url + path.replace("{match}", "m1").replace("{file}", "app.js");
      const res = await fetch(url, { method: "DELETE" });
      expect({ path, status: res.status }).toEqual({ path, status: 405 });
      const allowed = res.headers
        .get("allow")!
        .split(",")
        .map((m) => m.trim().toLowerCase())
        .sort();
      expect({ path, allowed }).toEqual({ path, allowed: METHODS.filter((m) => m in item).sort() });
      expectFits(doc.components.schemas.Error, await res.json(), `405 on ${path}`);
      expect(Object.values(item).every((op: any) => typeof op !== "object" || !op.responses || op.responses["405"])).toBe(true);
    }
  });

  test("publish answers fit: 201, duplicate 200, 400, 415, 409 match_ended", async () => {
    const path = "/matches/{match}/events";
    const match = uniqueMatch("oa");
    const post = (body: string, type = "application/json") =>
      fetch(`${node.url}/matches/${match}/events`, { method: "POST", headers: { "content-type": type }, body });
    await expectAnswer(await post(JSON.stringify({ type: "kickoff", data: { minute: 0 }, state: { homeScore: 0 }, key: "k1" })), path, "post", 201);
    const dup = await expectAnswer(await post(JSON.stringify({ type: "kickoff", key: "k1" })), path, "post", 200);
    expect(dup.duplicate).toBe(true);
    await expectAnswer(await post("{not json"), path, "post", 400);
    await expectAnswer(await post(JSON.stringify({ type: "snapshot" })), path, "post", 400);
    await expectAnswer(await post("{}", "text/plain"), path, "post", 415);
    await expectAnswer(await post(JSON.stringify({ type: "fulltime", final: true })), path, "post", 201);
    const ended = await expectAnswer(await post(JSON.stringify({ type: "goal" })), path, "post", 409);
    expect(ended.error).toBe("match_ended");
  });

  test("batch answers fit: 201 with results, 400 naming the item, 413", async () => {
    const m = uniqueMatch("oab");
    const post = (body: unknown) =>
      fetch(`${node.url}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const ok = await expectAnswer(
      await post([
        { match: m, type: "kickoff", key: "a" },
        { match: m, type: "goal", data: { team: "home" } },
      ]),
      "/events",
      "post",
      201,
    );
    expect(ok.results).toHaveLength(2);
    const dup = await expectAnswer(await post([{ match: m, type: "kickoff", key: "a" }]), "/events", "post", 201);
    expect(dup.results[0].duplicate).toBe(true);
    const bad = await expectAnswer(
      await post([
        { match: m, type: "goal" },
        { match: "no spaces", type: "goal" },
      ]),
      "/events",
      "post",
      400,
    );
    expect(bad.index).toBe(1);
    await expectAnswer(await post(Array.from({ length: 1001 }, () => ({ match: m, type: "minute" }))), "/events", "post", 413);
  });

  test("reads fit: match, listing, poll, cluster, owner, health, readiness", async () => {
    const match = uniqueMatch("oar");
    const first = await publishOk(node.url, match, { type: "kickoff", state: { home: "A", away: "B", homeScore: 0 } });
    await expectAnswer(await fetch(`${node.url}/matches/${match}`), "/matches/{match}", "get", 200);
    await expectAnswer(await fetch(`${node.url}/matches/never-${match}`), "/matches/{match}", "get", 404);
    await expectAnswer(await fetch(`${node.url}/matches?limit=5`), "/matches", "get", 200);
    await expectAnswer(await fetch(`${node.url}/matches?limit=0`), "/matches", "get", 400);
    await expectAnswer(await fetch(`${node.url}/matches/${match}/poll`), "/matches/{match}/poll", "get", 200);
    await publishOk(node.url, match, { type: "goal", data: { team: "home" }, state: { homeScore: 1 } });
    const polled = await expectAnswer(
      await fetch(`${node.url}/matches/${match}/poll?after=${encodeURIComponent(first)}&wait=0`),
      "/matches/{match}/poll",
      "get",
      200,
    );
    expect(polled.events).toHaveLength(1);
    await expectAnswer(await fetch(`${node.url}/cluster`), "/cluster", "get", 200);
    await expectAnswer(await fetch(`${node.url}/cluster/owner/${match}`), "/cluster/owner/{match}", "get", 200);
    await expectAnswer(await fetch(`${node.url}/healthz`), "/healthz", "get", 200);
    await expectAnswer(await fetch(`${node.url}/readyz`), "/readyz", "get", 200);
    const metrics = await fetch(`${node.url}/metrics`);
    expect(metrics.headers.get("content-type")).toStartWith("text/plain");
    expect(Object.keys(doc.paths["/metrics"].get.responses["200"].content)).toEqual(["text/plain"]);
  });

  test("every stream event's data fits its schema in x-sse-events: snapshot, event, hello, ping, end; 204 after the end", async () => {
    const path = "/matches/{match}/events";
    const events = doc.paths[path].get.responses["200"].content["text/event-stream"]["x-sse-events"];
    const match = uniqueMatch("oas");
    await publishOk(node.url, match, { type: "kickoff", state: { homeScore: 0 } });
    const s = await openSse(`${node.url}/matches/${match}/events?hello=1&heartbeat=1`);
    expect(s.headers.get("content-type")).toStartWith("text/event-stream");
    await s.until(() => s.events.some((e) => e.type === "touchline.ping"), 5000, "a named ping");
    await publishOk(node.url, match, { type: "goal", data: { team: "home" }, state: { homeScore: 1 } });
    await publishOk(node.url, match, { type: "fulltime", final: true });
    await s.until(() => s.isEnded, 5000, "the end of the stream");
    const seen = new Set<string>();
    let previousId = "";
    for (const e of s.events) {
      const name = e.type in events ? e.type : "<type>";
      seen.add(name);
      expectFits(events[name].data, JSON.parse(e.data), `stream event ${e.type}`);
      // Events documented without an id carry none: they leave the Last-Event-ID where it was.
      if (events[name].id === false) expect({ type: e.type, id: e.lastEventId }).toEqual({ type: e.type, id: previousId });
      else expect(e.lastEventId).not.toBe(previousId);
      previousId = e.lastEventId;
    }
    expect([...seen].sort()).toEqual(["<type>", "snapshot", "touchline.end", "touchline.hello", "touchline.ping"]);
    const again = await fetch(`${node.url}/matches/${match}/events`, { headers: { "last-event-id": s.lastEventId } });
    expect(again.status).toBe(204);
    expect(doc.paths[path].get.responses["204"]).toBeDefined();
  });
});

describe("a full node", () => {
  const { node } = useNode({ env: { MAX_CONNECTIONS: "1" } });

  test("refuses a stream with touchline.refused whose data fits the document", async () => {
    const events = doc.paths["/events"].get.responses["200"].content["text/event-stream"]["x-sse-events"];
    const match = uniqueMatch("oarl");
    await publishOk(node.url, match, { type: "kickoff" });
    const first = await openSse(`${node.url}/events?match=${match}`);
    await first.untilEvents(1);
    const second = await openSse(`${node.url}/events?match=${match}`);
    await second.until(() => second.isEnded, 5000, "the refusal to end");
    await first.close();
    expect(second.status).toBe(200);
    const refused = second.events.find((e) => e.type === "touchline.refused");
    expect(refused).toBeDefined();
    expectFits(events["touchline.refused"].data, JSON.parse(refused!.data), "touchline.refused");
  });
});
