/** Stream URLs of the HTTP contract. A base URL may carry a path prefix (a reverse proxy's). */

/** The server's default MAX_MATCHES_PER_STREAM. */
export const MAX_MATCHES_PER_STREAM = 64;

/** `GET /matches/{match}/events`: one match, plain ids (interchangeable with poll ids). */
export function matchStreamUrl(baseUrl: string | URL, match: string): string {
  return new URL(`matches/${encodeURIComponent(match)}/events`, withTrailingSlash(baseUrl)).toString();
}

/** `GET /events?match=a&match=b`: several matches on one connection, composite ids. */
export function multiStreamUrl(baseUrl: string | URL, matches: readonly string[], maxMatches = MAX_MATCHES_PER_STREAM): string {
  if (matches.length === 0) throw new RangeError("a multiplexed stream needs at least one match");
  if (matches.length > maxMatches) throw new RangeError(`a stream carries at most ${maxMatches} matches; open several streams`);
  const url = new URL("events", withTrailingSlash(baseUrl));
  for (const match of matches) url.searchParams.append("match", match);
  return url.toString();
}

/** `GET /matches/{match}/poll?after=<id>`: the long-polling fallback. */
export function pollUrl(baseUrl: string | URL, match: string, after?: string, waitMs?: number): string {
  const url = new URL(`matches/${encodeURIComponent(match)}/poll`, withTrailingSlash(baseUrl));
  if (after !== undefined && after !== "") url.searchParams.set("after", after);
  if (waitMs !== undefined) url.searchParams.set("wait", String(Math.max(0, Math.round(waitMs))));
  return url.toString();
}

/** Relative paths resolve under the base, prefix included. */
function withTrailingSlash(baseUrl: string | URL): string {
  const s = String(baseUrl);
  return s.endsWith("/") ? s : `${s}/`;
}
