/**
 * The HTTP API (the same on every node), as an Elysia app. Every error is the contract's JSON, logged
 * once; nothing a client sends can crash the node.
 */
import { Elysia } from "elysia";
import type { Server } from "bun";
import { join } from "node:path";
import type { TouchlineNode } from "../node/touchlineNode.ts";
import type { AppendResult } from "../bus/eventLog.ts";
import type { StreamRegistry } from "../stream/streamRegistry.ts";
import { isStreamResponse } from "../stream/sseStream.ts";
import { PROMETHEUS_CONTENT_TYPE, type MetricsRegistry } from "../telemetry/metrics.ts";
import type { NodeMetrics, RejectReason } from "../telemetry/nodeMetrics.ts";
import type { Logger } from "../telemetry/logger.ts";
import { tracedRoute } from "../telemetry/httpSpan.ts";
import { ATTR, HTTP_ROUTE_BATCH_PUBLISH, HTTP_ROUTE_PUBLISH } from "../telemetry/spanNames.ts";
import { type BatchResult, validateBatch } from "./batchPublish.ts";
import { formatEventId, validatePublishInput } from "../match/event.ts";
import type { Json } from "../match/mergePatch.ts";
import { refusableAsStream, refusalWaitMs, refusedStream } from "./refusal.ts";
import { readJsonBody } from "./body.ts";
import { HttpError, errorResponse, isCompleteAnswer, json, notReady, shortJson } from "./errors.ts";
import { openMatchStream, openMultiplexedStream, poll, validMatch } from "./streams.ts";
import { NodeLimits } from "../limits/nodeLimits.ts";
import { limitOf } from "../limits/limitError.ts";
import { headOfStream, isStreamRequest } from "./streamHead.ts";
import type { Cors } from "./cors.ts";
import type { StreamAuthorizer } from "../auth/streamAuthorizer.ts";
import { findToken } from "../auth/tokenTransport.ts";
import { compressAnswer } from "./compression.ts";
import { LIST_MAX_AGE_S, MATCH_MAX_AGE_S, cachedJson } from "./caching.ts";
import { OPENAPI_PATH, openApiResponse } from "./openapi.ts";
import { TurnPacer } from "./turnPacer.ts";
import { refusedByLog, tooLargeForLog } from "../node/publishRefusal.ts";
import { RepeatedWarning } from "../telemetry/repeatedWarning.ts";

const DEFAULT_LIST_LIMIT = 100;
const MAX_LIST_LIMIT = 1000;
/**
 * A turn of the event loop spends at most about this long on stream opens and batch publishes before the
 * rest wait for the next turn (turnPacer.ts). With the NATS reads' 4 ms and a flush pass's 400 writes a
 * turn stays well under the 50 ms a health check or a heartbeat should ever wait, even stretched by a
 * nats-server sharing the core.
 */
const PACED_TURN_BUDGET_MS = 2;
/**
 * Batch publishes are held back (one a turn) while this many events published through the node are
 * stored and not yet handed on by its stream tail: they are on their way to their viewers, and
 * admitting more meanwhile only queues more ahead of them. A batch's acknowledgement does not wait for
 * its delivery, so a producer keeping batches in flight would otherwise set the queue's length.
 */
const BATCH_HOLD_UNDELIVERED = 1000;
/**
 * JetStream refused to store an event (its storage full, a stream limit): what a producer is told to
 * wait before trying again. Such a condition is not over in a second, and retrying at once only adds load.
 */
const NOT_STORED_RETRY_AFTER_S = 5;
/** Failed publishes log one line per this long, counting the rest (RepeatedWarning). */
const PUBLISH_FAILURE_LOG_MS = 5000;
const WEB_DIR = join(import.meta.dir, "..", "web");
const WEB_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};

export interface AppDeps {
  node: TouchlineNode;
  registry: StreamRegistry;
  metricsRegistry: MetricsRegistry;
  metrics: NodeMetrics;
  logger: Logger;
  /** Tokens and private matches (src/auth). */
  auth: StreamAuthorizer;
  /** Cross-origin callers (CORS_ORIGINS). */
  cors: Cors;
  /** With PROXY_PROTOCOL, the client behind a connection by its peer port (src/proxy/proxyFront.ts). */
  proxiedSource?: (port: number) => string | undefined;
}

/**
 * The methods each registered path allows, read from the app's own routes (so a wrong method gets 405
 * with the right Allow, and no second list can drift from the registrations).
 */
function allowedMethods(routes: readonly { method: string; path: string }[]): (path: string) => string[] | undefined {
  const table = new Map<string, { re: RegExp; methods: string[] }>();
  for (const r of routes) {
    if (r.method === "HEAD" || r.method === "OPTIONS" || r.method === "ALL") continue;
    const entry = table.get(r.path) ?? { re: new RegExp(`^${r.path.replace(/[.]/g, "\\.").replace(/:[^/]+/g, "[^/]+")}$`), methods: [] };
    if (!entry.methods.includes(r.method)) entry.methods.push(r.method);
    table.set(r.path, entry);
  }
  return (path) => {
    const methods = new Set<string>();
    for (const { re, methods: m } of table.values()) if (re.test(path)) for (const x of m) methods.add(x);
    return methods.size > 0 ? [...methods].sort() : undefined;
  };
}

/** The token a request carries, by any transport (limits count publishes per token with it). */
function presentedToken(request: Request): string | undefined {
  const found = findToken(request, new URL(request.url));
  return found !== undefined && "token" in found ? found.token : undefined;
}

function rejectReason(status: number): RejectReason | undefined {
  if (status === 429) return "rate_limited";
  if (status === 503) return "capacity";
  if (status === 413 || status === 431) return "too_large";
  if (status === 401 || status === 403) return "unauthorized";
  if (status === 400 || status === 415) return "bad_request";
  return undefined;
}

export function createApp(deps: AppDeps) {
  const { node, registry, logger, metrics, auth, cors } = deps;
  // Node-wide abuse limits (per client address and per token), shared by every route.
  const limits = new NodeLimits(node.config.limits, {
    ...(auth.access.enabled ? { tokenOf: presentedToken } : {}),
    gauges: metrics,
    ...(deps.proxiedSource ? { proxiedSource: deps.proxiedSource } : {}),
  });
  limits.start();
  const pacer = new TurnPacer({ budgetMs: PACED_TURN_BUDGET_MS });
  const batchPacer = new TurnPacer({ budgetMs: PACED_TURN_BUDGET_MS, holdWhile: () => node.undeliveredPublishes > BATCH_HOLD_UNDELIVERED });
  const streamDeps = { node, registry, limits, auth, pacer };

  const fail = (err: unknown, request: Request): Response => {
    if (err instanceof HttpError) {
      const reason = rejectReason(err.status);
      if (reason) metrics.rejected[reason].inc();
      const limit = limitOf(err);
      if (limit) metrics.limited[limit].inc();
      const url = new URL(request.url);
      logger.info("request refused", { method: request.method, path: url.pathname, status: err.status, error: err.code });
      // Errors Elysia answers itself (no route, a bad parse) reach no guard: the CORS headers go on here (decorate is idempotent).
      return cors.decorate(request, errorResponse(err));
    }
    // A client that hangs up mid-body is not a fault of ours (and must not be a way to flood the error log).
    if (request.signal.aborted || (err instanceof Error && err.name === "AbortError")) {
      logger.info("client left before its request was read", { method: request.method, path: new URL(request.url).pathname });
      return errorResponse(new HttpError(400, "bad_request", "the request ended early"));
    }
    logger.error("request failed", { method: request.method, path: new URL(request.url).pathname, err });
    return cors.decorate(request, errorResponse(new HttpError(500, "internal_error", "internal error; the request was not applied")));
  };

  /**
   * Every answer a route gives leaves through here: compressed when it should be (never a stream:
   * compression.ts), with its CORS headers. In the routes' own wrappers rather than an Elysia
   * `mapResponse` hook, which made every request's handler asynchronous and put a hook call and a
   * promise on every publish (bench/README.md, "Where the time goes").
   */
  const finish = (request: Request, response: Response): Response | Promise<Response> => {
    if (isStreamResponse(response) || isCompleteAnswer(response)) return cors.decorate(request, response);
    const answer = compressAnswer(request, response);
    return answer instanceof Promise ? answer.then((compressed) => cors.decorate(request, compressed)) : cors.decorate(request, answer);
  };

  const guard =
    <C extends { request: Request }>(fn: (ctx: C) => Response | Promise<Response>) =>
    async (ctx: C): Promise<Response> => {
      try {
        // Awaited only when compressing: most answers leave in this turn.
        const answer = finish(ctx.request, await fn(ctx));
        return answer instanceof Promise ? await answer : answer;
      } catch (err) {
        return finish(ctx.request, fail(err, ctx.request));
      }
    };

  /** Stream requests: a refusal the client should retry is answered in the SSE form (refusal.ts). */
  const streamGuard =
    <C extends { request: Request }>(fn: (ctx: C) => Response | Promise<Response>) =>
    async (ctx: C): Promise<Response> => {
      try {
        return await finish(ctx.request, await fn(ctx));
      } catch (err) {
        if (!(err instanceof HttpError) || !refusableAsStream(err)) return finish(ctx.request, fail(err, ctx.request));
        fail(err, ctx.request); // counted and logged like any refusal
        return cors.decorate(ctx.request, refusedStream(err, refusalWaitMs(err, node.config.retryMs)));
      }
    };

  const matchEnded = (match: string, details: Record<string, unknown> = {}): HttpError =>
    new HttpError(409, "match_ended", `match ${match} has ended (its final event was published); nothing more can be published to it`, {}, details);

  /** JetStream did not confirm a publish: its outcome is unknown, and only a retry with the same key is safe. */
  const publishOutcomeUnknown = (keyed: boolean, details: Record<string, unknown> = {}): HttpError =>
    new HttpError(
      503,
      "publish_outcome_unknown",
      keyed
        ? "the event may or may not have been stored; retry with the same key (it is stored at most once)"
        : "the event may or may not have been stored; publish with a key and retry with the same key to store it exactly once",
      { "Retry-After": "1" },
      details,
    );

  /** The patch would grow the match's state past MAX_STATE_BYTES: nothing stored. */
  const stateTooLarge = (match: string, bytes: number, details: Record<string, unknown> = {}): HttpError =>
    new HttpError(
      413,
      "state_too_large",
      `with this state patch match ${match}'s state would be ${bytes} bytes, more than MAX_STATE_BYTES (${node.config.maxStateBytes}); remove keys (set them to null) or keep less in the state`,
      {},
      details,
    );
  /** The event is larger than the NATS server takes: nothing stored, and only a smaller event can be. */
  const eventTooLarge = (tooLarge: { maxBytes: number; bytes?: number; index?: number }): HttpError =>
    new HttpError(
      413,
      "event_too_large",
      `${tooLarge.index === undefined ? "the event" : `item ${tooLarge.index}`} ${tooLarge.bytes === undefined ? "is" : `takes ${tooLarge.bytes} bytes as a message,`} more than this cluster's NATS server takes (its max_payload, ${tooLarge.maxBytes} bytes): send less data or state, or raise max_payload on the NATS servers`,
      {},
      tooLarge.index === undefined ? {} : { index: tooLarge.index },
    );
  /** JetStream refused the event: nothing was stored, and a retry (key or no key) stores it once. */
  const notStored = (reason: string): HttpError =>
    new HttpError(503, "publish_failed", `the event was not stored: JetStream refused it (${reason}); retry later`, {
      "Retry-After": String(NOT_STORED_RETRY_AFTER_S),
    });
  // While NATS is away or its storage full every publish fails alike: a line per 5 s, not per publish.
  const publishRefusals = new RepeatedWarning(logger, "publish refused by JetStream: not stored", PUBLISH_FAILURE_LOG_MS);
  const publishesUnconfirmed = new RepeatedWarning(logger, "publish not confirmed", PUBLISH_FAILURE_LOG_MS);
  const batchesUnconfirmed = new RepeatedWarning(logger, "batch publish not confirmed part-way", PUBLISH_FAILURE_LOG_MS);

  // The publish request is the root of the event's trace (or continues the producer's).
  const publishSpan = { method: "POST", route: HTTP_ROUTE_PUBLISH, attributes: (params: { match: string }) => ({ [ATTR.match]: params.match }) };

  // Handlers are named here and called from inline arrows that destructure what they use: Elysia reads
  // a handler's parameters to decide what to prepare per request, and an opaque function (as `guard`
  // returns) makes it prepare everything, keeping a Headers object alive on every open stream.
  const publishRoute = tracedRoute(
    node.tracing,
    publishSpan,
    guard(async ({ request, params, server }: { request: Request; params: { match: string }; server: Server<unknown> | null }) => {
      const match = validMatch(params.match);
      limits.admitPublish(request, server);
      if (node.isDraining) throw new HttpError(503, "draining", "this node is shutting down; publish through another", { "Retry-After": "1" });
      if (!node.ready) throw notReady();
      // Without tokens every publisher is open: no URL to parse, no verification to wait for.
      if (auth.access.enabled) auth.access.requirePublish(await auth.viewerOf(request, new URL(request.url)), match);
      const body = await readJsonBody(request, node.config.maxBodyBytes);
      limits.checkJsonDepth(body);
      const input = validatePublishInput(body);
      if (!input.ok) throw new HttpError(400, "invalid_event", input.message);
      const overflow = input.value.state === undefined ? undefined : node.stateOverflow(match, [input.value.state]);
      if (overflow !== undefined) throw stateTooLarge(match, overflow.bytes);
      if (node.isEnded(match)) {
        // A retry of the final event itself (same key) is a duplicate, not a publish after the end.
        const finalSeq = node.finalEventOf(match, input.value.key);
        if (finalSeq === undefined) throw matchEnded(match);
        return shortJson({ id: formatEventId(finalSeq, node.logTag), duplicate: true }, 200);
      }
      let result: AppendResult;
      try {
        result = await node.publish(match, input.value);
      } catch (err) {
        const tooLarge = tooLargeForLog(err);
        if (tooLarge !== undefined) throw eventTooLarge(tooLarge);
        const refused = refusedByLog(err);
        if (refused !== undefined) {
          publishRefusals.note({ match, reason: refused });
          throw notStored(refused);
        }
        // JetStream did not confirm: the event may be stored all the same (a publish that timed out on a
        // cut connection is delivered when it heals). Only a retry with the same key is safe.
        publishesUnconfirmed.note({ match, err: String(err) });
        throw publishOutcomeUnknown(input.value.key !== undefined);
      }
      const id = formatEventId(result.seq, node.logTag);
      return result.duplicate ? shortJson({ id, duplicate: true }, 200) : shortJson({ id }, 201);
    }),
  );
  const batchPublishRoute = tracedRoute(
    node.tracing,
    { method: "POST", route: HTTP_ROUTE_BATCH_PUBLISH },
    guard(async ({ request, server }: { request: Request; params: Record<string, never>; server: Server<unknown> | null }) => {
      if (node.isDraining) throw new HttpError(503, "draining", "this node is shutting down; publish through another", { "Retry-After": "1" });
      if (!node.ready) throw notReady();
      const viewer = await auth.viewerOf(request, new URL(request.url));
      const body = await readJsonBody(request, node.config.batchMaxBytes);
      // Validating and storing a batch is up to a thousand items' work: batches arriving together share turns.
      const turn = batchPacer.turn();
      if (turn) await turn;
      limits.checkJsonDepth(body);
      const items = validateBatch(body, node.config.batchMaxItems);
      for (const item of items) auth.access.requirePublish(viewer, item.match);
      // An item for a match that has ended, or that follows a final item of its match in this batch.
      const endedInBatch = new Set<string>();
      for (const [index, item] of items.entries()) {
        if (node.isEnded(item.match) || endedInBatch.has(item.match)) throw matchEnded(item.match, { index });
        if (item.input.final) endedInBatch.add(item.match);
      }
      // Each match's patches in the batch, in order, onto its state: the first item that would pass the bound is named.
      const patchesOf = new Map<string, { indexes: number[]; patches: Json[] }>();
      for (const [index, { match, input }] of items.entries()) {
        if (input.state === undefined) continue;
        const of = patchesOf.get(match) ?? { indexes: [], patches: [] };
        of.indexes.push(index);
        of.patches.push(input.state);
        patchesOf.set(match, of);
      }
      for (const [match, { indexes, patches }] of patchesOf) {
        const overflow = node.stateOverflow(match, patches);
        if (overflow !== undefined) throw stateTooLarge(match, overflow.bytes, { index: indexes[overflow.at] });
      }
      limits.admitPublish(request, server, items.length);
      const { results, failure } = await node.publishBatch(items).catch((err: unknown) => {
        // Checked before anything was sent: nothing of the batch is stored.
        const tooLarge = tooLargeForLog(err);
        throw tooLarge === undefined ? err : eventTooLarge(tooLarge);
      });
      const answers: BatchResult[] = results.map((r) =>
        r.duplicate ? { id: formatEventId(r.seq, node.logTag), duplicate: true } : { id: formatEventId(r.seq, node.logTag) },
      );
      if (failure !== undefined) {
        // Later items were sent with the refused one (pipelined): each may be stored or not, refused or not.
        batchesUnconfirmed.note({ items: items.length, stored: results.length, err: String(failure) });
        throw publishOutcomeUnknown(
          items.every((i) => i.input.key !== undefined),
          { stored: results.length, results: answers },
        );
      }
      return json({ results: answers }, 201);
    }),
  );
  const matchStreamRoute = streamGuard(({ request, params, server }: { request: Request; params: { match: string }; server: Server<unknown> | null }) =>
    openMatchStream(streamDeps, request, server, params.match),
  );
  const multiplexedStreamRoute = streamGuard(({ request, server }: { request: Request; server: Server<unknown> | null }) =>
    openMultiplexedStream(streamDeps, request, server),
  );
  const pollRoute = guard(({ request, params, server }: { request: Request; params: { match: string }; server: Server<unknown> | null }) =>
    poll(streamDeps, request, params.match, server),
  );
  const matchStateRoute = guard(async ({ request, params }: { request: Request; params: { match: string } }) => {
    const match = validMatch(params.match);
    const viewer = await auth.viewerOf(request, new URL(request.url));
    if (!node.ready) throw notReady();
    const s = await node.matchState(match);
    if (!s) throw new HttpError(404, "not_found", `match ${match} has no events within retention`);
    auth.access.requireRead(viewer, match, s.private);
    return cachedJson(request, { match, id: formatEventId(s.seq, node.logTag), state: s.state, ...(s.ended ? { ended: true } : {}) }, MATCH_MAX_AGE_S);
  });
  const matchListRoute = guard(async ({ request }: { request: Request }) => {
    const url = new URL(request.url);
    const viewer = await auth.viewerOf(request, url);
    const rawLimit = url.searchParams.get("limit");
    const limit = rawLimit === null ? DEFAULT_LIST_LIMIT : Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new HttpError(400, "bad_request", `limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
    }
    // Filtered before paging, so neither a page nor its cursor names a match the viewer may not see.
    const visible = (match: string, e: { private?: boolean }) => auth.access.mayList(viewer, match, e.private === true);
    const page = node.listMatches(limit, url.searchParams.get("cursor") ?? undefined, visible);
    return cachedJson(
      request,
      {
        matches: page.items.map(([match, e]) => ({ match, id: formatEventId(e.seq, node.logTag), state: e.state, ...(e.ended ? { ended: true } : {}) })),
        next: page.next,
      },
      LIST_MAX_AGE_S,
      url,
    );
  });
  const clusterRoute = guard(() => {
    return json({ ...node.clusterView(), streams: registry.size });
  });
  const ownerRoute = guard(({ params }: { request: Request; params: { match: string } }) => {
    const match = validMatch(params.match);
    const owner = node.ownerOf(match);
    if (!owner) throw notReady("no live node is known yet");
    return json({ match, owner, lease: node.leaseOf(match) ?? null });
  });
  const webFileRoute = guard(({ params }: { request: Request; params: { file: string } }) => serveWeb(params.file));
  const pageRoute = guard((_: { request: Request }) => serveWeb("index.html"));
  const healthRoute = guard((_: { request: Request }) => json({ ok: true, node: node.id }));
  // Not ready while not connected, draining, or near MAX_CONNECTIONS (a balancer then sends new
  // clients elsewhere before this node has to refuse them).
  const readyRoute = guard((_: { request: Request }) => {
    const saturated = registry.saturated;
    return node.ready && !saturated
      ? json({ ready: true, node: node.id })
      : json({ ready: false, node: node.id, draining: node.isDraining, saturated }, 503, { "Retry-After": "1" });
  });
  const metricsRoute = guard((_: { request: Request }) => {
    node.refreshGauges();
    limits.refreshGauges();
    return new Response(deps.metricsRegistry.render(), { headers: { "Content-Type": PROMETHEUS_CONTENT_TYPE } });
  });
  const openApiRoute = guard((_: { request: Request }) => openApiResponse());

  let allowedOn: (path: string) => string[] | undefined = () => undefined;
  // The server, taken once when it starts: a route that names Elysia's `server` has it defined on
  // every request's context (a property with a getter each time), and only the address lookups need it.
  const listening: { server: Server<unknown> | null } = { server: null };
  const app = new Elysia()
    // Before routing, in one hook (each hook is a call per request): preflights are answered; an
    // oversized head is refused whatever its path; HEAD of a stream URL never opens a stream (see
    // streamHead.ts). Every other answer leaves through a route's guard (finish).
    .onRequest(({ request }) => {
      const preflight = cors.preflight(request);
      if (preflight) return preflight;
      const tooLarge = limits.checkHeaders(request, isStreamRequest(request));
      if (tooLarge) return fail(tooLarge, request);
      const head = headOfStream(request);
      if (head) return cors.decorate(request, head);
    })
    .onStart((started) => {
      listening.server = started.server;
    })
    .onStop(() => limits.stop())
    .post("/matches/:match/events", ({ request, params }) => publishRoute({ request, params, server: listening.server }), { parse: "none" })
    .get("/matches/:match/events", ({ request, params }) => matchStreamRoute({ request, params, server: listening.server }))
    .get("/events", ({ request }) => multiplexedStreamRoute({ request, server: listening.server }))
    .post("/events", ({ request }) => batchPublishRoute({ request, params: {}, server: listening.server }), { parse: "none" })
    .get("/matches/:match/poll", ({ request, params }) => pollRoute({ request, params, server: listening.server }))
    .get("/matches/:match", ({ request, params }) => matchStateRoute({ request, params }))
    .get("/matches", ({ request }) => matchListRoute({ request }))
    .get("/cluster", ({ request }) => clusterRoute({ request }))
    .get("/cluster/owner/:match", ({ request, params }) => ownerRoute({ request, params }))
    .get("/healthz", ({ request }) => healthRoute({ request }))
    .get("/readyz", ({ request }) => readyRoute({ request }))
    .get("/metrics", ({ request }) => metricsRoute({ request }))
    .get(OPENAPI_PATH, ({ request }) => openApiRoute({ request }))
    .get("/", ({ request }) => pageRoute({ request }))
    .get("/web/:file", ({ request, params }) => webFileRoute({ request, params }))
    .onError(({ code, request, error }) => {
      const path = new URL(request.url).pathname;
      if (code === "NOT_FOUND") {
        const allowed = allowedOn(path);
        if (allowed) {
          return fail(new HttpError(405, "method_not_allowed", `use ${allowed.join(" or ")} on ${path}`, { Allow: allowed.join(", ") }), request);
        }
        return fail(new HttpError(404, "not_found", `no route ${request.method} ${path}; the API is described at GET /openapi.json`), request);
      }
      if (code === "PARSE" || code === "VALIDATION") return fail(new HttpError(400, "bad_request", String((error as Error).message ?? error)), request);
      return fail(error, request);
    });
  allowedOn = allowedMethods(app.routes);
  return app;
}

async function serveWeb(file: string): Promise<Response> {
  if (!/^[\w-]+\.(html|js|css|svg)$/.test(file)) throw new HttpError(404, "not_found", "no such file");
  const f = Bun.file(join(WEB_DIR, file));
  if (!(await f.exists())) throw new HttpError(404, "not_found", "no such file");
  const ext = file.slice(file.lastIndexOf(".") + 1);
  return new Response(f, { headers: { "Content-Type": WEB_TYPES[ext] ?? "application/octet-stream", "Cache-Control": "no-cache" } });
}
