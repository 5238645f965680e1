/**
 * The HTTP API as an OpenAPI 3.1 document, served at `GET /openapi.json` and kept as docs/openapi.json
 * (regenerate it with `npx bun src/http/openapi.ts --write`). test/integration/openapi.test.ts checks
 * it against the routes the app registers, the 405 table, and the file.
 *
 * Event streams are `text/event-stream`; OpenAPI 3.1 has no way to describe the messages of a stream,
 * so each stream's media type carries `x-sse-events`: every event it may send, whether it has an `id:`
 * line, and the JSON schema of its `data:` (the same idea OpenAPI 3.2 names `itemSchema`).
 */
import pkg from "../../package.json" with { type: "json" };

export const OPENAPI_PATH = "/openapi.json";

type Schema = Record<string, unknown>;
type Responses = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const jsonOf = (schema: Schema, extra: Record<string, unknown> = {}) => ({ "application/json": { schema, ...extra } });

const MATCH_PATTERN = "^[A-Za-z0-9_-]{1,64}$";

const RETRY_AFTER = { "Retry-After": { $ref: "#/components/headers/RetryAfter" } };

/** Every error answer has the contract's body; `codes` lists the `error` values this status carries. */
function error(description: string, codes: string[], opts: { retryAfter?: boolean; schema?: string; headers?: Record<string, unknown> } = {}) {
  return {
    description: `${description} (\`error\`: ${codes.map((c) => `\`${c}\``).join(", ")})`,
    ...(opts.retryAfter || opts.headers ? { headers: { ...(opts.retryAfter ? RETRY_AFTER : {}), ...opts.headers } } : {}),
    content: jsonOf(ref(opts.schema ?? "Error")),
  };
}

const E = {
  badRequest: (...codes: string[]) => error("Malformed request", codes.length ? codes : ["bad_request"]),
  unauthorized: error("Missing, expired, malformed or wrongly signed token", ["unauthorized"], {
    headers: { "WWW-Authenticate": { schema: { type: "string" }, description: '`Bearer realm="touchline"`, with `error="invalid_token"` for a bad token' } },
  }),
  forbidden: error("The token does not cover this match", ["forbidden"]),
  notFound: error("No such match (no events within retention) or file", ["not_found"]),
  methodNotAllowed: error("Wrong method for this path", ["method_not_allowed"], {
    headers: { Allow: { schema: { type: "string" }, description: "the methods this path allows" } },
  }),
  tooLarge: (...codes: string[]) => error("Too large", codes),
  unsupportedType: error("The body is not `Content-Type: application/json`", ["unsupported_media_type"]),
  rateLimited: error("Over a per-address or per-token rate limit; wait `Retry-After` seconds", ["rate_limited"], { retryAfter: true }),
  headTooLarge: error("The request line and headers are over MAX_HEADER_BYTES (streams: enough for their longest resume)", ["headers_too_large"]),
  unavailable: (...codes: string[]) => error("Not now: retry after `Retry-After` seconds, on this node or another", codes, { retryAfter: true }),
};

/** Answers any route may give. */
const COMMON: Responses = { "405": E.methodNotAllowed, "431": E.headTooLarge };

const MATCH_PARAM = { name: "match", in: "path", required: true, description: "match id", schema: { type: "string", pattern: MATCH_PATTERN } };
const STREAM_PARAMS = [
  {
    name: "Last-Event-ID",
    in: "header",
    required: false,
    description: "resume after this id (an EventSource sends it by itself on reconnect); unknown, unparseable or expired ids give a snapshot, never an error",
    schema: ref("EventId"),
  },
  {
    name: "lastEventId",
    in: "query",
    required: false,
    description: "the same as the Last-Event-ID header, for a fresh EventSource",
    schema: { type: "string" },
  },
  {
    name: "hello",
    in: "query",
    required: false,
    description: "`1`: start with `touchline.hello` naming the node serving this stream",
    schema: { type: "string", enum: ["1"] },
  },
  {
    name: "heartbeat",
    in: "query",
    required: false,
    description: "`1`: heartbeats as `touchline.ping` events (visible to EventSource) instead of `: ping` comments",
    schema: { type: "string", enum: ["1"] },
  },
];

const SSE_HEADERS = {
  "Cache-Control": {
    schema: { type: "string", const: "no-cache, no-transform" },
    description: "no cache and no proxy may store or transform (compress) a stream",
  },
  "X-Accel-Buffering": { schema: { type: "string", const: "no" }, description: "tells nginx not to buffer the stream" },
};

/** The messages of a stream: name, whether they carry an `id:` line, and their `data:`. */
function sseEvents(multiplexed: boolean) {
  const idNote = multiplexed ? "composite id (`m1:1042,m2:0@<tag>`, one position per match)" : "the event's id";
  return {
    snapshot: {
      id: `${idNote}; none when the match has no events yet`,
      data: ref("SnapshotData"),
      description: multiplexed ? "first, one per match not resumed exactly: its whole state" : "first, unless resumed exactly: the match's whole state",
    },
    "<type>": { id: idNote, data: ref("EventData"), description: "a published event, named by its `type` (`goal`, `card`, ...), in order" },
    "touchline.hello": { id: false, data: ref("HelloData"), description: "with `?hello=1`: after `retry:`, before anything else" },
    "touchline.ping": {
      id: false,
      data: { type: "object", maxProperties: 0 },
      description: "with `?heartbeat=1`: every HEARTBEAT_MS without writes (otherwise a `: ping` comment)",
    },
    "touchline.end": {
      id: false,
      data: ref("EndData"),
      description: multiplexed
        ? "a match on the stream ended; the stream goes on with the others (ends with the last)"
        : "the match ended (after its final event); the stream closes",
    },
    "touchline.refused": {
      id: false,
      data: ref("RefusedData"),
      description:
        "the only event of a refused stream (node full, draining, not ready, or rate limited), after `retry:` set to the wait; then the stream closes and EventSource comes back by itself",
    },
  };
}

function streamOk(multiplexed: boolean) {
  return {
    description:
      "An event stream: `retry:` first, then the messages listed in `x-sse-events` (`id:`, `event:`, `data:` lines, a blank line), and `: ping` comments when idle. Never compressed. A refused stream is a 200 too: `retry:` and one `touchline.refused` event.",
    headers: SSE_HEADERS,
    content: {
      "text/event-stream": {
        schema: { type: "string" },
        "x-sse-events": sseEvents(multiplexed),
        example:
          'retry: 1000\n\nid: 1042@mx9hqrq0\nevent: snapshot\ndata: {"match":"m1","state":{"homeScore":1}}\n\nid: 1043@mx9hqrq0\nevent: goal\ndata: {"match":"m1","data":{"team":"away"},"ts":1733351230000,"state":{"awayScore":1}}\n\n',
      },
    },
  };
}

const CACHED_HEADERS = (maxAge: string) => ({
  "Cache-Control": { schema: { type: "string" }, description: `\`public, max-age=${maxAge}\` (\`private\` when the request carries a token)` },
  ETag: { schema: { type: "string" }, description: "weak validator of the JSON; send it back as If-None-Match" },
});
const IF_NONE_MATCH = {
  name: "If-None-Match",
  in: "header",
  required: false,
  description: "an ETag from an earlier answer: 304 while it is current",
  schema: { type: "string" },
};
const NOT_MODIFIED = (maxAge: string) => ({ "304": { description: "unchanged since the ETag in If-None-Match", headers: CACHED_HEADERS(maxAge) } });

const paths = {
  "/matches/{match}/events": {
    parameters: [MATCH_PARAM],
    post: {
      operationId: "publish",
      tags: ["publish"],
      summary: "Publish one event to a match",
      description:
        'Answers 201 only after JetStream stored the event. A `key` repeated for the same match within the dedupe window (at least 2 minutes) answers 200 with the first id and stores nothing. `"final": true` ends the match. With TOUCHLINE_JWT_SECRET set, needs a token whose `touchline.publish` claim lists the match or `*`.',
      requestBody: { required: true, description: "at most MAX_BODY_BYTES (64 KiB)", content: jsonOf(ref("PublishBody")) },
      responses: {
        "201": { description: "stored", content: jsonOf(ref("Published")) },
        "200": { description: "a repeated key: nothing stored, the first id", content: jsonOf(ref("Duplicate")) },
        "400": E.badRequest("invalid_json", "invalid_event", "invalid_match", "bad_request"),
        "401": E.unauthorized,
        "403": E.forbidden,
        "409": error("The match has ended; nothing more can be published to it", ["match_ended"]),
        "413": E.tooLarge("too_large", "state_too_large", "event_too_large"),
        "415": E.unsupportedType,
        "429": E.rateLimited,
        "503": error(
          "`not_ready` / `draining`: nothing was sent, retry; `publish_failed`: JetStream refused the event (its storage full, a stream limit), nothing was stored: retry after `Retry-After`; `publish_outcome_unknown`: JetStream did not confirm, the event may be stored: retry with the same key",
          ["not_ready", "draining", "publish_failed", "publish_outcome_unknown"],
          { retryAfter: true },
        ),
        ...COMMON,
      },
    },
    get: {
      operationId: "streamMatch",
      tags: ["streams"],
      summary: "Event stream of one match (SSE)",
      description:
        "Whatever the Accept header. Without a resume id: a snapshot (id = the latest event), then live events. With one: every event after it, in order, then live, with no gap and no duplicate. After the match ended, a resume at or past its final event is 204 (EventSource stops for good).",
      parameters: STREAM_PARAMS,
      responses: {
        "200": streamOk(false),
        "204": { description: "the match has ended and the client has its final event: nothing more will come" },
        "400": E.badRequest("invalid_match"),
        "401": E.unauthorized,
        "403": E.forbidden,
        ...COMMON,
      },
    },
  },
  "/events": {
    get: {
      operationId: "streamMatches",
      tags: ["streams"],
      summary: "One event stream for several matches (SSE)",
      description:
        "One snapshot per match, then the live events of all. Ids are composite (`m1:1042,m2:0@<tag>`): resuming with one is exact for every match; matches missing from it get a snapshot. All matches ended and resumed past their final events: 204.",
      parameters: [
        {
          name: "match",
          in: "query",
          required: true,
          description: "a match id, repeated: at most MAX_MATCHES_PER_STREAM (64)",
          schema: { type: "array", items: { type: "string", pattern: MATCH_PATTERN }, minItems: 1 },
          style: "form",
          explode: true,
        },
        ...STREAM_PARAMS,
      ],
      responses: {
        "200": streamOk(true),
        "204": { description: "every match on the stream has ended and the client has their final events" },
        "400": E.badRequest("bad_request", "invalid_match"),
        "401": E.unauthorized,
        "403": E.forbidden,
        "413": E.tooLarge("too_many_matches"),
        ...COMMON,
      },
    },
    post: {
      operationId: "publishBatch",
      tags: ["publish"],
      summary: "Publish several events (any matches) in one request",
      description:
        "Every item is validated and authorized before anything is stored (a bad item: 400 naming its `index`, nothing stored). Items are stored in order (order kept per match); the answer lists each item's id in request order once all are stored. If storing stops part-way: 503 `publish_outcome_unknown` with `stored` and the `results` of the stored items: retry the rest with their keys.",
      requestBody: {
        required: true,
        description: "at most BATCH_MAX_ITEMS (1,000) items and BATCH_MAX_BYTES (1 MiB)",
        content: jsonOf({ type: "array", minItems: 1, maxItems: 1000, items: ref("BatchItem") }),
      },
      responses: {
        "201": { description: "all stored", content: jsonOf(ref("BatchPublished")) },
        "400": error("A bad item (its `index` is in the body) or a malformed body; nothing stored", ["invalid_json", "invalid_event", "bad_request"], {
          schema: "ItemError",
        }),
        "401": E.unauthorized,
        "403": E.forbidden,
        "409": error("An item's match has ended (or follows a final item of its match in this batch); nothing stored", ["match_ended"], {
          schema: "ItemError",
        }),
        "413": E.tooLarge("too_large", "state_too_large", "event_too_large"),
        "415": E.unsupportedType,
        "429": E.rateLimited,
        "503": {
          description:
            "`not_ready` / `draining`: nothing stored, retry. `publish_outcome_unknown`: storing stopped part-way; `stored` items were stored (their ids in `results`), later ones may or may not be: retry them with their keys",
          headers: RETRY_AFTER,
          content: jsonOf({ anyOf: [ref("Error"), ref("BatchOutcomeUnknown")] }),
        },
        ...COMMON,
      },
    },
  },
  "/matches/{match}/poll": {
    parameters: [MATCH_PARAM],
    get: {
      operationId: "poll",
      tags: ["streams"],
      summary: "Long poll: the events after an id",
      description:
        "Answers as soon as there is anything after `after`, or empty after `wait`. At most about CLIENT_BUFFER_BYTES of events per answer (whole events, at least one): pass `next` as `after` again. Without `after` (or with one the node cannot resume from): `snapshot` instead. Ids are those of the single-match stream.",
      parameters: [
        { name: "after", in: "query", required: false, description: "an event id (`0`: from the first retained event)", schema: { type: "string" } },
        {
          name: "wait",
          in: "query",
          required: false,
          description: "milliseconds to wait for an event, at most POLL_WAIT (default 25 s, also the default wait)",
          schema: { type: "integer", minimum: 0 },
        },
      ],
      responses: {
        "200": { description: "the events after `after` (possibly none), or a snapshot", content: jsonOf(ref("PollAnswer")) },
        "400": E.badRequest("invalid_match"),
        "401": E.unauthorized,
        "403": E.forbidden,
        "429": E.rateLimited,
        "503": E.unavailable("not_ready"),
        ...COMMON,
      },
    },
  },
  "/matches/{match}": {
    parameters: [MATCH_PARAM],
    get: {
      operationId: "getMatch",
      tags: ["matches"],
      summary: "A match's current state",
      parameters: [IF_NONE_MATCH],
      responses: {
        "200": { description: "its state and latest id", headers: CACHED_HEADERS("1"), content: jsonOf(ref("MatchRead")) },
        ...NOT_MODIFIED("1"),
        "400": E.badRequest("invalid_match"),
        "401": E.unauthorized,
        "403": E.forbidden,
        "404": E.notFound,
        "503": E.unavailable("not_ready"),
        ...COMMON,
      },
    },
  },
  "/matches": {
    get: {
      operationId: "listMatches",
      tags: ["matches"],
      summary: "Matches with events within retention, most recently active first",
      description: "Private matches are listed only for a token that covers them.",
      parameters: [
        { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
        { name: "cursor", in: "query", required: false, description: "`next` of the previous page", schema: { type: "string" } },
        IF_NONE_MATCH,
      ],
      responses: {
        "200": { description: "one page", headers: CACHED_HEADERS("2"), content: jsonOf(ref("MatchList")) },
        ...NOT_MODIFIED("2"),
        "400": E.badRequest("bad_request"),
        "401": E.unauthorized,
        ...COMMON,
      },
    },
  },
  "/cluster": {
    get: {
      operationId: "cluster",
      tags: ["cluster"],
      summary: "The cluster as this node sees it",
      responses: { "200": { description: "live members and this node's share", content: jsonOf(ref("ClusterView")) }, ...COMMON },
    },
  },
  "/cluster/owner/{match}": {
    parameters: [MATCH_PARAM],
    get: {
      operationId: "owner",
      tags: ["cluster"],
      summary: "The node that owns a match",
      responses: {
        "200": { description: "its owner by the ring, and the lease holder if any", content: jsonOf(ref("Owner")) },
        "400": E.badRequest("invalid_match"),
        "503": E.unavailable("not_ready"),
        ...COMMON,
      },
    },
  },
  "/healthz": {
    get: {
      operationId: "health",
      tags: ["operations"],
      summary: "Liveness: 200 while the process is alive",
      responses: { "200": { description: "alive", content: jsonOf(ref("Health")) }, ...COMMON },
    },
  },
  "/readyz": {
    get: {
      operationId: "ready",
      tags: ["operations"],
      summary: "Readiness: 200 once connected to NATS and joined; 503 while draining or holding ≥ 95% of MAX_CONNECTIONS streams (200 again below 90%)",
      responses: {
        "200": { description: "ready", content: jsonOf(ref("Ready")) },
        "503": { description: "not ready: send new clients elsewhere", headers: RETRY_AFTER, content: jsonOf(ref("Ready")) },
        ...COMMON,
      },
    },
  },
  "/metrics": {
    get: {
      operationId: "metrics",
      tags: ["operations"],
      summary: "Prometheus metrics",
      responses: { "200": { description: "Prometheus text exposition format 0.0.4", content: { "text/plain": { schema: { type: "string" } } } }, ...COMMON },
    },
  },
  [OPENAPI_PATH]: {
    get: {
      operationId: "openapi",
      tags: ["operations"],
      summary: "This document",
      responses: { "200": { description: "OpenAPI 3.1", content: jsonOf({ type: "object" }) }, ...COMMON },
    },
  },
  "/": {
    get: {
      operationId: "page",
      tags: ["page"],
      summary: "The live scoreboard page",
      responses: { "200": { description: "HTML", content: { "text/html": { schema: { type: "string" } } } }, ...COMMON },
    },
  },
  "/web/{file}": {
    parameters: [
      { name: "file", in: "path", required: true, description: "a file of the page", schema: { type: "string", pattern: "^[\\w-]+\\.(html|js|css|svg)$" } },
    ],
    get: {
      operationId: "pageFile",
      tags: ["page"],
      summary: "The page's scripts, styles and images",
      responses: {
        "200": {
          description: "the file",
          content: {
            "text/javascript": { schema: { type: "string" } },
            "text/css": { schema: { type: "string" } },
            "text/html": { schema: { type: "string" } },
            "image/svg+xml": { schema: { type: "string" } },
          },
        },
        "404": E.notFound,
        ...COMMON,
      },
    },
  },
};

const ERROR_CODES = [
  "bad_request",
  "invalid_json",
  "invalid_match",
  "invalid_event",
  "unauthorized",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "too_large",
  "too_many_matches",
  "headers_too_large",
  "unsupported_media_type",
  "rate_limited",
  "at_capacity",
  "not_ready",
  "draining",
  "publish_failed",
  "publish_outcome_unknown",
  "state_too_large",
  "event_too_large",
  "match_ended",
  "internal_error",
];

const JSON_VALUE: Schema = { description: "any JSON value" };
const STATE: Schema = {
  type: "object",
  description: "the match's state: the JSON object built by applying each event's `state` merge patch (RFC 7386) in order",
};
const PATCH: Schema = { type: "object", description: "a JSON merge patch (RFC 7386) applied to the match's state" };
const ENDED: Schema = { type: "boolean", const: true, description: "present once the match has ended" };

const schemas: Record<string, Schema> = {
  EventId: {
    type: "string",
    description: "opaque; in practice `<seq>@<tag>` (JetStream sequence, increasing within a match, and the log incarnation's tag)",
    examples: ["1042@mx9hqrq0"],
  },
  Error: {
    type: "object",
    required: ["error", "message"],
    properties: { error: { type: "string", enum: ERROR_CODES }, message: { type: "string", description: "what to do" } },
  },
  ItemError: {
    allOf: [ref("Error"), { type: "object", properties: { index: { type: "integer", minimum: 0, description: "the item at fault (when one is)" } } }],
  },
  BatchOutcomeUnknown: {
    allOf: [
      ref("Error"),
      {
        type: "object",
        required: ["stored", "results"],
        properties: {
          error: { const: "publish_outcome_unknown" },
          stored: { type: "integer", minimum: 0, description: "how many items, from the first, were stored" },
          results: { type: "array", items: ref("PublishResult"), description: "the ids of the stored items" },
        },
      },
    ],
  },
  PublishBody: {
    type: "object",
    required: ["type"],
    properties: {
      type: { type: "string", pattern: "^[A-Za-z][A-Za-z0-9_.-]{0,63}$", description: "`snapshot` and `touchline.*` are reserved (400)" },
      data: { ...JSON_VALUE, description: "the event's payload (any JSON; omitted: null)" },
      state: PATCH,
      key: {
        type: "string",
        minLength: 1,
        maxLength: 128,
        description: "idempotency key: the same key for the same match within the dedupe window stores nothing more",
      },
      final: { type: "boolean", description: "the match's last event: it ends the match" },
      private: { type: "boolean", description: "the match is private: reading it needs a token whose `touchline.subscribe` claim covers it" },
    },
  },
  BatchItem: {
    allOf: [ref("PublishBody"), { type: "object", required: ["match"], properties: { match: { type: "string", pattern: MATCH_PATTERN } } }],
  },
  Published: { type: "object", required: ["id"], properties: { id: ref("EventId") } },
  Duplicate: { type: "object", required: ["id", "duplicate"], properties: { id: ref("EventId"), duplicate: { const: true } } },
  PublishResult: { anyOf: [ref("Published"), ref("Duplicate")] },
  BatchPublished: {
    type: "object",
    required: ["results"],
    properties: { results: { type: "array", items: ref("PublishResult"), description: "in request order" } },
  },
  MatchRead: {
    type: "object",
    required: ["match", "id", "state"],
    properties: { match: { type: "string" }, id: ref("EventId"), state: STATE, ended: ENDED },
  },
  MatchList: {
    type: "object",
    required: ["matches", "next"],
    properties: { matches: { type: "array", items: ref("MatchRead") }, next: { type: ["string", "null"], description: "cursor of the next page" } },
  },
  PollAnswer: {
    type: "object",
    required: ["match", "events", "next"],
    properties: {
      match: { type: "string" },
      events: {
        type: "array",
        items: {
          type: "object",
          required: ["id", "type", "data", "ts"],
          properties: {
            id: ref("EventId"),
            type: { type: "string" },
            data: JSON_VALUE,
            ts: { type: "integer", description: "publish time, ms since epoch" },
            state: PATCH,
          },
        },
      },
      next: { oneOf: [ref("EventId"), { type: "null" }], description: "pass as `after` next time" },
      snapshot: { type: "object", required: ["id", "state"], properties: { id: { oneOf: [ref("EventId"), { type: "null" }] }, state: STATE } },
      ended: ENDED,
    },
  },
  ClusterView: {
    type: "object",
    required: ["node", "nodes"],
    properties: {
      node: { type: "string", description: "this node's id" },
      nodes: {
        type: "array",
        description: "live members",
        items: {
          type: "object",
          required: ["id"],
          properties: {
            id: { type: "string" },
            url: { type: "string" },
            startedAt: { type: "integer" },
            settings: {
              type: "object",
              description: "the settings every node must share, as this member announces them (RETENTION, MAX_STATE_BYTES, TOKENS...)",
              additionalProperties: { oneOf: [{ type: "string" }, { type: "number" }, { type: "boolean" }] },
            },
          },
        },
      },
      settingsDiffer: {
        type: "array",
        description: "live members announcing settings this node does not share, and which",
        items: {
          type: "object",
          required: ["node", "differences"],
          properties: {
            node: { type: "string" },
            differences: {
              type: "array",
              items: {
                type: "object",
                required: ["setting", "here", "there"],
                properties: { setting: { type: "string" }, here: {}, there: {} },
              },
            },
          },
        },
      },
      version: { type: "integer", description: "membership version" },
      ready: { type: "boolean" },
      owned: { type: "integer", description: "matches this node owns" },
      upstreamFeeds: { type: "integer", description: "matches this node follows from their owners" },
      streams: { type: "integer", description: "client streams open on this node" },
    },
  },
  Owner: {
    type: "object",
    required: ["match", "owner"],
    properties: {
      match: { type: "string" },
      owner: { type: "string", description: "node id" },
      lease: { oneOf: [{ type: "object", properties: { node: { type: "string" }, epoch: { type: "integer" } } }, { type: "null" }] },
    },
  },
  Health: { type: "object", required: ["ok", "node"], properties: { ok: { const: true }, node: { type: "string" } } },
  Ready: {
    type: "object",
    required: ["ready", "node"],
    properties: { ready: { type: "boolean" }, node: { type: "string" }, draining: { type: "boolean" }, saturated: { type: "boolean" } },
  },
  SnapshotData: { type: "object", required: ["match", "state"], properties: { match: { type: "string" }, state: STATE } },
  EventData: {
    type: "object",
    required: ["match", "data", "ts"],
    properties: { match: { type: "string" }, data: JSON_VALUE, ts: { type: "integer", description: "publish time, ms since epoch" }, state: PATCH },
  },
  HelloData: { type: "object", required: ["node"], properties: { node: { type: "string", description: "the node serving this stream" } } },
  EndData: { type: "object", required: ["match"], properties: { match: { type: "string" } } },
  RefusedData: {
    type: "object",
    required: ["error", "message", "retryAfterMs"],
    properties: {
      error: { type: "string", enum: ["at_capacity", "draining", "not_ready", "rate_limited"] },
      message: { type: "string" },
      retryAfterMs: { type: "integer", description: "the wait (also the stream's `retry:`)" },
    },
  },
};

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "Touchline",
      version: pkg.version,
      summary: "Live match events over Server-Sent Events, from any node of the cluster",
      description:
        'The same API on every node. The contract (ids, ordering, exact resume, invariants) is docs/design.md. Errors are JSON `{"error", "message"}`. JSON answers, the page\'s files and metrics over about 1 KiB are compressed (br or gzip) when the client accepts it; event streams never are.',
      license: { name: pkg.license, identifier: pkg.license },
    },
    tags: [
      { name: "publish", description: "Producers" },
      { name: "streams", description: "Consumers: event streams and long polling" },
      { name: "matches", description: "Reading match state" },
      { name: "cluster", description: "Membership and ownership" },
      { name: "operations", description: "Health, readiness, metrics" },
      { name: "page", description: "The scoreboard page" },
    ],
    // A token is optional everywhere: publishing needs one when the node has a key, reading only for
    // private matches. The query form is for EventSource, which cannot send headers.
    security: [{}, { bearer: [] }, { cookie: [] }, { query: [] }],
    paths,
    components: {
      schemas,
      headers: { RetryAfter: { description: "seconds to wait before retrying", schema: { type: "integer", minimum: 0 } } },
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "HS256 with TOUCHLINE_JWT_SECRET (or a public key); claims `touchline.publish` and `touchline.subscribe` list match ids or `*`",
        },
        cookie: { type: "apiKey", in: "cookie", name: "touchline_token" },
        query: { type: "apiKey", in: "query", name: "access_token" },
      },
    },
  };
}

/** The document as served: built once, pretty-printed as in docs/openapi.json. */
let served: string | undefined;
export function openApiText(): string {
  return (served ??= `${JSON.stringify(openApiDocument(), null, 2)}\n`);
}

export function openApiResponse(): Response {
  return new Response(openApiText(), { headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-cache" } });
}

if (import.meta.main) {
  if (process.argv.includes("--write")) {
    const file = new URL("../../docs/openapi.json", import.meta.url).pathname;
    await Bun.write(file, openApiText());
    process.stderr.write(`wrote ${file}\n`);
  } else {
    process.stdout.write(openApiText());
  }
}
