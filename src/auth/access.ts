/**
 * Access: who is asking, and what they may do (docs/design.md, Security).
 *
 * - With no key configured the node runs open: anyone may publish and read (private matches still
 *   stay out of the listing).
 * - Publishing needs a token whose `touchline.publish` claim covers the match.
 * - Reading a private match (stream, multiplexed stream, poll, `GET /matches/{m}`) needs a token whose
 *   `touchline.subscribe` claim covers it; the listing shows a private match only to such a token.
 * - A token that is present must be valid even where none is needed: a bad one is a 401, never ignored.
 * - A request from an origin that may not send credentials (see http/cors.ts) is served as anonymous:
 *   its token is not read at all, so a hostile page cannot ride a visitor's cookie.
 */
import { insufficientClaim, invalidToken, tokenRequired } from "./authErrors.ts";
import { covers } from "./grants.ts";
import { findToken, type TokenTransport } from "./tokenTransport.ts";
import type { TokenVerifier, VerifiedToken } from "./tokenVerifier.ts";

export type Viewer = { kind: "open" } | { kind: "anonymous" } | { kind: "token"; token: VerifiedToken; transport: TokenTransport };

const OPEN: Viewer = { kind: "open" };
const ANONYMOUS: Viewer = { kind: "anonymous" };

export interface AccessOptions {
  /** Undefined when no key is configured: the node runs open. */
  verifier: TokenVerifier | undefined;
  /** False for requests whose origin may not send credentials; their tokens are not read. */
  honoursCredentials(request: Request): boolean;
}

export class Access {
  constructor(private readonly opts: AccessOptions) {}

  get enabled(): boolean {
    return this.opts.verifier !== undefined;
  }

  /** Reads and verifies the request's token, if it carries one it may use. Throws 401 for a bad one. */
  async viewerOf(request: Request, url: URL): Promise<Viewer> {
    const verifier = this.opts.verifier;
    if (!verifier) return OPEN;
    if (!this.opts.honoursCredentials(request)) return ANONYMOUS;
    const found = findToken(request, url);
    if (found === undefined) return ANONYMOUS;
    if ("malformed" in found) throw invalidToken(found.malformed);
    return { kind: "token", token: await verifier(found.token), transport: found.transport };
  }

  requirePublish(viewer: Viewer, match: string): void {
    if (viewer.kind === "open") return;
    if (viewer.kind === "anonymous") throw tokenRequired("publishing needs a token with a touchline.publish claim");
    if (!covers(viewer.token.grants.publish, match)) {
      throw insufficientClaim(`the token's touchline.publish claim does not cover match ${match}`);
    }
  }

  /** True when the viewer may read `match` even if it is private. */
  mayReadPrivate(viewer: Viewer, match: string): boolean {
    return viewer.kind === "open" || (viewer.kind === "token" && covers(viewer.token.grants.subscribe, match));
  }

  requireRead(viewer: Viewer, match: string, isPrivate: boolean): void {
    if (!isPrivate || this.mayReadPrivate(viewer, match)) return;
    if (viewer.kind === "token") throw insufficientClaim(`match ${match} is private; the token's touchline.subscribe claim does not cover it`);
    throw tokenRequired(`match ${match} is private; subscribing needs a token with a touchline.subscribe claim`);
  }

  /** Whether `GET /matches` shows this match to this viewer. */
  mayList(viewer: Viewer, match: string, isPrivate: boolean): boolean {
    return !isPrivate || (viewer.kind === "token" && covers(viewer.token.grants.subscribe, match));
  }

  /**
   * A stream lives until its token expires, so a token already past `exp` (inside the clock-skew
   * allowance that let it verify) opens none: a client reconnecting with it would otherwise get a stream
   * that closes at once, again and again.
   */
  requireUnexpiredForStream(viewer: Viewer, now = Date.now()): void {
    if (viewer.kind !== "token") return;
    const exp = viewer.token.expiresAt;
    if (exp !== undefined && exp <= now) throw invalidToken("the token has expired; get a new one");
  }
}
