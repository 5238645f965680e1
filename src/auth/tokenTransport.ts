/**
 * Where a request carries its token, checked in this order: the `Authorization: Bearer` header, the
 * `touchline_token` cookie, then the `access_token` query parameter (a browser's EventSource can set
 * neither headers nor, across sites, always cookies). The query form puts the token in the URL, so no
 * log line or span may ever hold a URL with its query: the HTTP layer logs paths only.
 */
const TOKEN_COOKIE = "touchline_token";
const TOKEN_QUERY_PARAM = "access_token";
/** Far above any real JWT; stops a client from making us parse megabytes. */
export const MAX_TOKEN_CHARS = 8192;

export type TokenTransport = "header" | "cookie" | "query";

export type FoundToken = { token: string; transport: TokenTransport } | { malformed: string } | undefined;

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function cookieValue(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    // RFC 6265 allows a value in double quotes.
    return raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
  }
  return undefined;
}

function checked(token: string, transport: TokenTransport): FoundToken {
  if (token.length === 0) return { malformed: `the ${transport} token is empty` };
  if (token.length > MAX_TOKEN_CHARS) return { malformed: `the token is longer than ${MAX_TOKEN_CHARS} characters` };
  return { token, transport };
}

/** The request's token, a reason it is unusable, or undefined when it carries none. */
export function findToken(request: Request, url: URL): FoundToken {
  const authorization = request.headers.get("authorization");
  if (authorization !== null) {
    const m = BEARER.exec(authorization);
    if (!m) return { malformed: "the Authorization header must be `Bearer <token>`" };
    return checked(m[1]!, "header");
  }
  const cookie = cookieValue(request.headers.get("cookie"), TOKEN_COOKIE);
  if (cookie !== undefined) return checked(cookie, "cookie");
  const query = url.searchParams.get(TOKEN_QUERY_PARAM);
  if (query !== null) return checked(query, "query");
  return undefined;
}
