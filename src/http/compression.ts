/**
 * Compressed answers. JSON, the scoreboard page's files and the metrics text are sent brotli- or
 * gzip-encoded when the client's `Accept-Encoding` allows it and the body is at least
 * COMPRESS_MIN_BYTES (below that the encoding's own overhead eats the saving). Every answer that could
 * be compressed says `Vary: Accept-Encoding`, so a cache keeps the encodings apart.
 *
 * Event streams are never compressed (nor the stream-shaped refusals): a compressor holds bytes back
 * until it has a block worth emitting, so an event or a heartbeat would reach the client late (or only
 * when the stream ends), and every open stream would keep a compressor's window in memory. Proxies in
 * front must not compress them either (the streams say `Cache-Control: no-transform`; see docs/operators.md,
 * "Compression, caches and proxies in front").
 *
 * Applied in one place, where every route's answer leaves the app (app.ts, `finish`).
 */
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib";

/** Bodies smaller than this are sent as they are. */
export const COMPRESS_MIN_BYTES = 1024;

export type ContentCoding = "br" | "gzip";

/** Media types worth compressing. `text/event-stream` is deliberately absent. */
const COMPRESSIBLE = /^\s*(?:application\/(?:json|[\w.+-]+\+json|javascript)|text\/(?:html|css|javascript|plain)|image\/svg\+xml)\s*(?:;|$)/i;
/** The page's files: the same bytes for every request, so their compressed form is kept (STATIC_CACHE_ENTRIES). */
const STATIC = /^\s*(?:text\/(?:html|css|javascript)|application\/javascript|image\/svg\+xml)\s*(?:;|$)/i;
const STATIC_CACHE_ENTRIES = 32;

/**
 * Dynamic answers (listings, polls, metrics) are compressed per request, so cheaply: measured on a
 * 21.6 KB `GET /matches?limit=100`, gzip -6 gives 2.1 KB in 0.43 ms, brotli 5 gives 2.0 KB in 1.2 ms
 * (brotli 4: 2.2 KB, 0.9 ms). So gzip is preferred for them when the client takes both, brotli 5 serves
 * clients that take only brotli. Static files are compressed once, hard, and brotli is preferred
 * (app.js: 25.3 KB, gzip -9 8.7 KB, brotli 11 7.5 KB).
 */
const DYNAMIC = { br: 5, gzip: 6 } as const;
const ONCE = { br: 11, gzip: 9 } as const;

function compressible(contentType: string | null): boolean {
  return contentType !== null && COMPRESSIBLE.test(contentType);
}

/**
 * The coding to answer with, from an `Accept-Encoding` header (RFC 9110 §12.5.3): the accepted one
 * with the highest q, `prefer` on a tie; `*` stands for any coding not named; q=0 refuses. Undefined:
 * send the body as it is.
 */
export function negotiateEncoding(acceptEncoding: string | null, prefer: ContentCoding = "br"): ContentCoding | undefined {
  if (!acceptEncoding) return undefined;
  const q = new Map<string, number>();
  for (const part of acceptEncoding.split(",")) {
    const [name = "", ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    if (name === "") continue;
    let weight = 1;
    for (const p of params) {
      const m = /^q\s*=\s*([0-9.]+)$/.exec(p);
      if (m) weight = Number(m[1]);
    }
    if (Number.isFinite(weight)) q.set(name, Math.min(1, Math.max(0, weight)));
  }
  const wildcard = q.get("*") ?? 0;
  const weightOf = (c: ContentCoding): number => q.get(c) ?? (c === "gzip" ? (q.get("x-gzip") ?? wildcard) : wildcard);
  const br = weightOf("br");
  const gzip = weightOf("gzip");
  if (br <= 0 && gzip <= 0) return undefined;
  if (br === gzip) return prefer;
  return br > gzip ? "br" : "gzip";
}

function encode(body: Uint8Array, coding: ContentCoding, level: { br: number; gzip: number } = DYNAMIC): Uint8Array<ArrayBuffer> {
  const out =
    coding === "br"
      ? brotliCompressSync(body, {
          params: { [zlib.BROTLI_PARAM_QUALITY]: level.br, [zlib.BROTLI_PARAM_SIZE_HINT]: body.byteLength, [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT },
        })
      : gzipSync(body, { level: level.gzip });
  return out as Uint8Array<ArrayBuffer>;
}

/** Adds `value` to the Vary header once, keeping what is there. */
export function addVary(headers: Headers, value: string): void {
  const vary = headers.get("vary");
  if (vary === null || vary.trim() === "") headers.set("Vary", value);
  else if (!vary.split(",").some((v) => v.trim().toLowerCase() === value.toLowerCase() || v.trim() === "*")) headers.set("Vary", `${vary}, ${value}`);
}

/** Compressed static files by coding and content: a file changed on disk gets a new entry. */
const staticCache = new Map<string, Uint8Array<ArrayBuffer>>();

function encodeStatic(body: Uint8Array, coding: ContentCoding): Uint8Array<ArrayBuffer> {
  const key = `${coding}:${body.byteLength}:${Bun.hash(body).toString(36)}`;
  let out = staticCache.get(key);
  if (out === undefined) {
    out = encode(body, coding, ONCE);
    if (staticCache.size >= STATIC_CACHE_ENTRIES) staticCache.delete(staticCache.keys().next().value!);
    staticCache.set(key, out);
  }
  return out;
}

/**
 * The answer as this client should get it: compressed when its type is compressible, it has a body
 * of at least COMPRESS_MIN_BYTES and the client accepts br or gzip; otherwise unchanged (but for the
 * Vary header). Never touches an event stream, an answer already encoded, or one without a body.
 *
 * Synchronous unless there is a body to read and encode: most answers are short and leave in the turn
 * that made them, without a promise each (a publish's `{"id"}` does not come here at all: shortJson).
 */
export function compressAnswer(request: Request, response: Response): Response | Promise<Response> {
  if (response.status < 200 || response.status === 204 || response.status === 206 || response.status === 304) return response;
  const type = response.headers.get("content-type");
  if (!compressible(type) || response.headers.has("content-encoding")) return response;
  // Read after the headers: Bun makes a body's stream object when it is first asked for.
  if (response.body === null) return response;
  addVary(response.headers, "Accept-Encoding");
  // A short answer whose length is declared (json() declares it) stays as it is, whatever the client takes.
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared < COMPRESS_MIN_BYTES) return response;
  const isStatic = STATIC.test(type!);
  const coding = negotiateEncoding(request.headers.get("accept-encoding"), isStatic ? "br" : "gzip");
  if (coding === undefined) return response;
  // Elysia answers HEAD by running the GET route; its body is dropped, so encoding it is wasted work.
  if (request.method === "HEAD") return response;
  return encodeAnswer(response, coding, isStatic);
}

async function encodeAnswer(response: Response, coding: ContentCoding, isStatic: boolean): Promise<Response> {
  const body = new Uint8Array(await response.arrayBuffer());
  const headers = new Headers(response.headers);
  const init = { status: response.status, statusText: response.statusText, headers };
  if (body.byteLength < COMPRESS_MIN_BYTES) return new Response(body, init);
  const encoded = isStatic ? encodeStatic(body, coding) : encode(body, coding);
  headers.set("Content-Encoding", coding);
  headers.delete("Content-Length");
  // A strong validator names exact bytes: once encoded, the answer's validator can only be weak.
  const etag = headers.get("etag");
  if (etag !== null && !etag.startsWith("W/")) headers.set("ETag", `W/${etag}`);
  return new Response(encoded, init);
}
