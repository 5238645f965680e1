/**
 * Opening client streams: `GET /matches/{match}/events` and the multiplexed `GET /events?match=...`,
 * plus the long-polling fallback. Bad or unknown resume ids never give an error (a browser's
 * EventSource would give up for good): they give a snapshot.
 */
import type { Server } from "bun";
import type { TouchlineNode } from "../node/touchlineNode.ts";
import type { StreamPlace, StreamRegistry } from "../stream/streamRegistry.ts";
import { MultiplexCursor, MultiplexedSubscription, SingleMatchSubscription } from "../stream/subscriptions.ts";
import type { MatchSubscriber } from "../actors/subscriber.ts";
import type { MatchActor } from "../actors/matchActor.ts";
import type { EncodedEvent } from "../actors/encodedEvent.ts";
import { MATCH_ID, formatEventId, parseEventId } from "../match/event.ts";
import { parseCursor } from "../match/cursor.ts";
import type { Json } from "../match/mergePatch.ts";
import { HttpError, json, notReady } from "./errors.ts";
import type { NodeLimits } from "../limits/nodeLimits.ts";
import { encodeMessage } from "../sse/encode.ts";
import type { SseStream, StreamHolder } from "../stream/sseStream.ts";
import { MultiplexLease, StreamLease } from "./streamLease.ts";
import { callerTraceContext } from "../telemetry/httpSpan.ts";
import type { StreamAuthorizer } from "../auth/streamAuthorizer.ts";
import type { Viewer } from "../auth/access.ts";
import type { MatchSnapshot } from "../actors/matchSnapshot.ts";
import type { TurnPacer } from "./turnPacer.ts";

/** Seconds a stream may see no write before Bun closes it: heartbeats keep healthy streams well inside. */
export function streamIdleSeconds(heartbeatMs: number): number {
  return Math.min(255, Math.ceil((heartbeatMs * 2) / 1000) + 5);
}

export interface StreamDeps {
  node: TouchlineNode;
  registry: StreamRegistry;
  /** Node-wide abuse limits (src/limits). */
  limits: NodeLimits;
  /** Tokens, private matches and expiry (src/auth). */
  auth: StreamAuthorizer;
  /** Spreads a storm of opens over turns of the event loop (turnPacer.ts). */
  pacer: TurnPacer;
}

function lastEventIdOf(request: Request, url: URL): string | null {
  return request.headers.get("last-event-id") ?? url.searchParams.get("lastEventId");
}

/** Opt-in greeting (`?hello=1`) so the default contract (retry, then snapshot) stays as it was. */
const HELLO_PARAM = "hello";
const HELLO_EVENT = "touchline.hello";
const HEARTBEAT_PARAM = "heartbeat";

/**
 * Names the node serving this very stream: behind an L4 balancer a separate `/cluster` request may
 * reach another node. No id line, so it never moves the client's Last-Event-ID. The stream holds writes
 * until release(), so written before joining, it lands after `retry:` and before any snapshot.
 */
function honourStreamParams(deps: StreamDeps, url: URL, stream: SseStream): void {
  // `?heartbeat=1`: heartbeats a page can see (see NAMED_PING_EVENT).
  if (url.searchParams.get(HEARTBEAT_PARAM) === "1") stream.namedPing = true;
  if (url.searchParams.get(HELLO_PARAM) !== "1") return;
  stream.writeText(encodeMessage({ event: HELLO_EVENT, data: JSON.stringify({ node: deps.node.id }) }));
}

export function validMatch(match: string): string {
  if (!MATCH_ID.test(match)) throw new HttpError(400, "invalid_match", "match ids match ^[A-Za-z0-9_-]{1,64}$");
  return match;
}

/** Readiness and capacity: a place held for the stream (given back unless it opens), or a 503. */
function admitStream(deps: StreamDeps): StreamPlace {
  if (deps.node.isDraining) throw new HttpError(503, "draining", "this node is shutting down; reconnect", { "Retry-After": "1" });
  if (!deps.node.ready) throw notReady();
  if (deps.registry.full) {
    throw new HttpError(503, "at_capacity", "this node holds as many streams as it may; retry (another node may have room)", {
      "Retry-After": "2",
    });
  }
  return deps.registry.reserve();
}

/**
 * Ties an opened stream to what it holds. The stream's own `cancel` tells us the client left (no
 * abort listener: it would keep the request alive for the stream's lifetime). A cut-off stream's
 * socket closes at its idle timeout at the latest; its queue is freed at once.
 */
function hold(deps: StreamDeps, request: Request, server: Server<unknown> | null, stream: SseStream, lease: StreamHolder): void {
  stream.holdFor(lease);
  // Authorization may await before the stream opens: the client can be gone already.
  if (request.signal.aborted) stream.close("client");
  else if (server) server.timeout(request, streamIdleSeconds(deps.node.config.heartbeatMs));
}

/** 204: nothing more will ever come on this stream (its matches ended); EventSource stops for good. */
const NOTHING_MORE = (): Response => new Response(null, { status: 204 });

/** The match ended and the client has its final event already (`after` is at or past it). */
async function endedBy(actor: MatchActor, after: number): Promise<boolean> {
  const last = await actor.finalSeq();
  return last !== undefined && after >= last;
}

/**
 * A join settled: let the stream's held writes go, or, when a match could not serve it (its log failed,
 * the actor stopped), end it with what it has so the client resumes by id, here or elsewhere.
 */
function settleJoin(stream: SseStream, live: boolean): void {
  if (live) stream.release();
  else stream.close("unavailable");
}

/** A stream open past its turn, its viewer and its place: what both kinds of stream open with. */
interface StreamOpening {
  deps: StreamDeps;
  request: Request;
  server: Server<unknown> | null;
  url: URL;
  viewer: Viewer;
  /** Held for the stream (readiness and capacity checked); given back unless a stream opens in it. */
  place: StreamPlace;
}

/**
 * What every stream open does first: waits its turn (turnPacer.ts), reads the viewer, then holds a place
 * (readiness and capacity) for `open`, given back unless a stream opened in it.
 */
async function openInPlace(
  deps: StreamDeps,
  request: Request,
  server: Server<unknown> | null,
  url: URL,
  open: (opening: StreamOpening) => Promise<Response>,
): Promise<Response> {
  const turn = deps.pacer.turn();
  if (turn) await turn;
  const viewer = await deps.auth.viewerOf(request, url);
  const place = admitStream(deps);
  try {
    return await open({ deps, request, server, url, viewer, place });
  } finally {
    place.release();
  }
}

export async function openMatchStream(deps: StreamDeps, request: Request, server: Server<unknown> | null, match: string): Promise<Response> {
  validMatch(match);
  return openInPlace(deps, request, server, new URL(request.url), (opening) => openMatchIn(opening, match));
}

async function openMatchIn({ deps, request, server, url, viewer, place }: StreamOpening, match: string): Promise<Response> {
  // Limits before any actor exists: a refused request must cost no lease, reader or feed.
  const release = deps.limits.admitStream(request, server);
  let actor: MatchActor;
  try {
    actor = deps.node.actor(match);
    await deps.auth.authorizeStream(viewer, [actor]);
  } catch (err) {
    release();
    throw err;
  }
  const after = parseEventId(lastEventIdOf(request, url), deps.node.logTag);
  // A resume at or after the final event of an ended match: 204, which stops an EventSource for good.
  if (after !== undefined && (await endedBy(actor, after))) {
    release();
    return NOTHING_MORE();
  }
  const stream = place.open();
  honourStreamParams(deps, url, stream);
  const sub = deps.auth.guard(viewer, actor, new SingleMatchSubscription(stream, actor.match), stream);
  hold(deps, request, server, stream, new StreamLease(actor, sub, release, deps.auth.closeAtExpiry(viewer, stream)));
  void actor.join(sub, after, callerTraceContext(deps.node.tracing, request)).then((live) => settleJoin(stream, live));
  return stream.takeResponse();
}

export async function openMultiplexedStream(deps: StreamDeps, request: Request, server: Server<unknown> | null): Promise<Response> {
  const url = new URL(request.url);
  const matches = [...new Set(url.searchParams.getAll("match"))];
  if (matches.length === 0) throw new HttpError(400, "bad_request", "name at least one match: /events?match=a&match=b");
  const max = deps.node.config.maxMatchesPerStream;
  if (matches.length > max) throw new HttpError(413, "too_many_matches", `one stream carries at most ${max} matches; open another stream`);
  for (const m of matches) validMatch(m);
  return openInPlace(deps, request, server, url, (opening) => openMultiplexedIn(opening, matches, max));
}

async function openMultiplexedIn({ deps, request, server, url, viewer, place }: StreamOpening, matches: string[], max: number): Promise<Response> {
  const release = deps.limits.admitStream(request, server);
  let actors: MatchActor[];
  try {
    actors = matches.map((m) => deps.node.actor(m));
    await deps.auth.authorizeStream(viewer, actors);
  } catch (err) {
    release();
    throw err;
  }
  const resumed = parseCursor(lastEventIdOf(request, url), max, deps.node.logTag);
  // Matches that ended at or before the client's position are done: not joined again. All of them: 204.
  const done = await Promise.all(actors.map((a) => (resumed.has(a.match) ? endedBy(a, resumed.get(a.match)!) : false)));
  if (done.every(Boolean)) {
    release();
    return NOTHING_MORE();
  }
  const stream = place.open();
  honourStreamParams(deps, url, stream);
  const shared = new MultiplexCursor(matches, resumed);
  for (const [i, a] of actors.entries()) if (done[i]) shared.end(a.match);
  actors = actors.filter((_, i) => !done[i]);
  const joins = actors.map((actor) => ({
    actor,
    sub: deps.auth.guard(viewer, actor, new MultiplexedSubscription(stream, shared, actor.match), stream),
  }));
  hold(deps, request, server, stream, new MultiplexLease(joins, release, deps.auth.closeAtExpiry(viewer, stream)));
  const trace = callerTraceContext(deps.node.tracing, request);
  void Promise.all(joins.map((j) => j.actor.join(j.sub, resumed.get(j.actor.match), trace))).then((live) => settleJoin(stream, live.every(Boolean)));
  return stream.takeResponse();
}

/**
 * Collects what an actor sends for one long poll: at most `maxBytes` of events (whole events, at least
 * one), so a poll far behind a busy match answers a page and its `next`, never its whole history.
 */
class PollCollector implements MatchSubscriber {
  lastSeq = 0;
  open = true;
  events: EncodedEvent[] = [];
  private bytes = 0;
  snapshot: { seq: number; state: Record<string, Json> } | undefined;
  /** The match ended and this answer reaches its final event. */
  ended = false;
  private wake: (() => void) | undefined;

  sendSnapshot(snapshot: MatchSnapshot): void {
    this.lastSeq = snapshot.seq;
    this.snapshot = { seq: snapshot.seq, state: snapshot.state };
  }

  constructor(private readonly maxBytes: number) {}

  sendEvent(e: EncodedEvent): boolean {
    if (this.events.length > 0 && this.bytes + e.frame.byteLength > this.maxBytes) return false;
    this.bytes += e.frame.byteLength;
    this.lastSeq = e.seq;
    this.events.push(e);
    // Let the rest of this turn's events land in the same answer.
    if (this.wake) queueMicrotask(this.wake);
    return true;
  }

  matchEnded(): void {
    this.ended = true;
    if (this.wake) queueMicrotask(this.wake);
  }

  /** Its actor stopped: the poll answers with what it has; the next one, by `next`, finds the match served. */
  actorStopped(): void {
    this.open = false;
    if (this.wake) queueMicrotask(this.wake);
  }

  waitForEvent(ms: number, signal: AbortSignal): Promise<void> {
    if (this.events.length > 0 || this.ended || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

/** `GET /matches/{match}/poll?after=<id>&wait=<ms>`: the events after an id, with the stream's ids. */
export async function poll(deps: StreamDeps, request: Request, match: string, server: Server<unknown> | null = null): Promise<Response> {
  validMatch(match);
  if (!deps.node.ready) throw notReady();
  const url = new URL(request.url);
  const afterRaw = url.searchParams.get("after");
  const after = afterRaw === "0" ? 0 : parseEventId(afterRaw, deps.node.logTag);
  const waitRaw = Number(url.searchParams.get("wait") ?? deps.node.config.pollWaitMs);
  const wait = Number.isFinite(waitRaw) ? Math.max(0, Math.min(deps.node.config.pollWaitMs, waitRaw)) : deps.node.config.pollWaitMs;
  const viewer = await deps.auth.viewerOf(request, url);
  const collector = new PollCollector(deps.node.config.clientBufferBytes);
  // With nothing new, `next` must still hold the caller's position.
  if (after !== undefined) collector.lastSeq = after;
  // A long poll is held open like a stream: it counts against the address's open streams (not its
  // stream rate), checked before any actor exists.
  const release = deps.limits.admitStream(request, server, { countRate: false });
  let actor: MatchActor | undefined;
  try {
    actor = deps.node.actor(match);
    await deps.auth.authorizeRead(viewer, [actor]);
    if (!(await actor.join(collector, after))) throw notReady("the match could not be read on this node right now");
  } catch (err) {
    collector.open = false;
    actor?.leave(collector);
    release();
    throw err;
  }
  try {
    if (!collector.snapshot) await collector.waitForEvent(wait, request.signal);
  } finally {
    collector.open = false;
    actor.leave(collector);
    release();
  }
  // The match may have turned private while this poll waited.
  deps.auth.access.requireRead(viewer, match, actor.private);
  const tag = deps.node.logTag;
  const events = collector.events.map((e) => {
    const { type, data, ts, state } = e.decode();
    return { id: e.id, type, data, ts, ...(state !== undefined ? { state } : {}) };
  });
  const body: Record<string, unknown> = { match, events, next: collector.lastSeq > 0 ? formatEventId(collector.lastSeq, tag) : null };
  if (collector.ended) body.ended = true;
  if (collector.snapshot)
    body.snapshot = { id: collector.snapshot.seq > 0 ? formatEventId(collector.snapshot.seq, tag) : null, state: collector.snapshot.state };
  return json(body);
}
