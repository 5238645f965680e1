/**
 * Short-lived caching of match reads (`GET /matches`, `GET /matches/{match}`), which every scoreboard
 * page polls: a `Cache-Control: max-age` of a second or two and a weak `ETag` over the JSON, so a CDN
 * or the browser answers most polls itself and revalidates the rest (`If-None-Match`: 304, no body).
 * A second of staleness costs nothing here: live changes reach pages on their event streams.
 *
 * An answer to a request that carries a token (header, cookie or query) may list private matches, so
 * it is `private` (browser only); anonymous answers are the same for every anonymous caller and
 * `public`. Weak validators, because the bytes differ per content coding (compression.ts).
 */
import { findToken } from "../auth/tokenTransport.ts";
import { addVary } from "./compression.ts";

/** `GET /matches`: the listing pages poll. */
export const LIST_MAX_AGE_S = 2;
/** `GET /matches/{match}`. */
export const MATCH_MAX_AGE_S = 1;

export function etagOf(text: string): string {
  return `W/"${Bun.hash(text).toString(36)}"`;
}

/** Whether an `If-None-Match` header matches `etag`, by weak comparison (RFC 9110 §13.1.2). */
export function noneMatch(header: string | null, etag: string): boolean {
  if (header === null) return false;
  const opaque = (tag: string): string => tag.trim().replace(/^W\//, "");
  const want = opaque(etag);
  return header.split(",").some((t) => t.trim() === "*" || opaque(t) === want);
}

/**
 * A 200 JSON answer with Cache-Control and ETag, or a 304 without a body when the client's
 * If-None-Match names the current ETag.
 */
export function cachedJson(request: Request, body: unknown, maxAgeS: number, url = new URL(request.url)): Response {
  const text = JSON.stringify(body);
  const etag = etagOf(text);
  const headers = new Headers({
    "Cache-Control": `${findToken(request, url) === undefined ? "public" : "private"}, max-age=${maxAgeS}`,
    ETag: etag,
  });
  // The 304 must name what the 200 varies by (compression.ts adds it to the 200).
  addVary(headers, "Accept-Encoding");
  if (noneMatch(request.headers.get("if-none-match"), etag)) return new Response(null, { status: 304, headers });
  headers.set("Content-Type", "application/json; charset=utf-8");
  return new Response(text, { status: 200, headers });
}
