/**
 * Cross-origin access (CORS_ORIGINS).
 *
 * - Unset (the default): no cross-origin access at all. The scoreboard page is served by the node
 *   itself, so it needs none; browsers keep other sites from reading anything.
 * - Listed exact origins: may read and publish, with credentials (`Access-Control-Allow-Credentials`),
 *   so their pages may send the `touchline_token` cookie or an `Authorization` header.
 * - `*`: any other origin may read public matches, without credentials. Its requests are served as
 *   anonymous (their tokens are not read), so a wildcard never reaches a private match.
 * - Any other origin: no CORS headers, and served as anonymous too, so a hostile page cannot make a
 *   visitor's browser publish or open a private stream with the visitor's cookie.
 *
 * Every answer of a node with CORS configured carries `Vary: Origin`, since it depends on the caller.
 */
import { ANY_ORIGIN } from "../config/securityConfig.ts";
import { json } from "./errors.ts";

/** How a request's `Origin` stands with this node. */
export type OriginStanding = "none" | "same" | "listed" | "any" | "refused";

const ALLOWED_METHODS = "GET, POST";
const CREDENTIALED_HEADERS = "Authorization, Content-Type, Last-Event-ID";
/** No Authorization: tokens from wildcard origins are not read anyway. */
const ANONYMOUS_HEADERS = "Content-Type, Last-Event-ID";
/** Headers a cross-origin page may read beyond the CORS-safelisted ones. */
const EXPOSED_HEADERS = "Retry-After, WWW-Authenticate";
/** Browsers cap this (Chromium at 2 h); 10 minutes keeps a changed CORS_ORIGINS from lingering long. */
const PREFLIGHT_MAX_AGE_S = 600;

export class Cors {
  private readonly listed: ReadonlySet<string>;
  private readonly anyOrigin: boolean;

  constructor(origins: readonly string[]) {
    this.anyOrigin = origins.includes(ANY_ORIGIN);
    this.listed = new Set(origins.filter((o) => o !== ANY_ORIGIN));
  }

  private get configured(): boolean {
    return this.anyOrigin || this.listed.size > 0;
  }

  standing(request: Request): OriginStanding {
    const origin = request.headers.get("origin");
    if (origin === null) return "none";
    if (this.listed.has(origin)) return "listed";
    if (isSameOrigin(origin, request)) return "same";
    return this.anyOrigin ? "any" : "refused";
  }

  /** Whether the request's token (header, cookie or query) may be read. */
  honoursCredentials(request: Request): boolean {
    const s = this.standing(request);
    return s === "none" || s === "same" || s === "listed";
  }

  /** The answer to a CORS preflight; undefined when the request is not one (it is routed as usual). */
  preflight(request: Request): Response | undefined {
    if (request.method !== "OPTIONS" || !request.headers.has("origin") || !request.headers.has("access-control-request-method")) return undefined;
    const standing = this.standing(request);
    if (standing === "refused" || standing === "none") {
      const origin = request.headers.get("origin") ?? "";
      const res = json({ error: "forbidden", message: `origin ${origin} may not call this node cross-origin; see CORS_ORIGINS` }, 403);
      if (this.configured) varyOnOrigin(res.headers);
      return res;
    }
    const res = new Response(null, { status: 204 });
    this.allow(res, request, standing);
    res.headers.set("Access-Control-Allow-Methods", ALLOWED_METHODS);
    res.headers.set("Access-Control-Allow-Headers", standing === "any" ? ANONYMOUS_HEADERS : CREDENTIALED_HEADERS);
    res.headers.set("Access-Control-Max-Age", String(PREFLIGHT_MAX_AGE_S));
    return res;
  }

  /** Adds the CORS headers an actual (non-preflight) answer needs. Idempotent. */
  decorate(request: Request, response: Response): Response {
    if (!this.configured) return response;
    const standing = this.standing(request);
    if (standing === "listed" || standing === "any") {
      this.allow(response, request, standing);
      response.headers.set("Access-Control-Expose-Headers", EXPOSED_HEADERS);
    } else {
      varyOnOrigin(response.headers);
    }
    return response;
  }

  private allow(response: Response, request: Request, standing: OriginStanding): void {
    const h = response.headers;
    if (standing === "any") {
      h.set("Access-Control-Allow-Origin", "*");
    } else {
      h.set("Access-Control-Allow-Origin", request.headers.get("origin") ?? "");
      h.set("Access-Control-Allow-Credentials", "true");
    }
    varyOnOrigin(h);
  }
}

/** Adds `Origin` to `Vary` once, keeping what is there. */
function varyOnOrigin(h: Headers): void {
  const vary = h.get("vary");
  if (vary === null) h.set("Vary", "Origin");
  else if (!vary.split(",").some((v) => v.trim().toLowerCase() === "origin")) h.set("Vary", `${vary}, Origin`);
}

/**
 * The page was served by this very host (the scoreboard page): its Origin names the Host it called.
 * Schemes are not compared: behind a TLS-passing L4 balancer the node cannot tell them apart reliably.
 */
function isSameOrigin(origin: string, request: Request): boolean {
  const host = request.headers.get("host");
  if (host === null) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false; // "null" (sandboxed frames, file://) and garbage
  }
}
