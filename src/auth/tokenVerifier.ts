/**
 * Checks a JWT with `jose` (never by hand): signature with the key pinned to the token's algorithm,
 * `exp` and `nbf` with a small allowance for clock skew, `iss`/`aud` when configured, then the
 * Touchline claims. Every failure becomes a 401 whose message says which check failed.
 */
import { errors, jwtVerify, type JWTVerifyOptions } from "jose";
import { invalidToken } from "./authErrors.ts";
import { grantsOf, type Grants } from "./grants.ts";
import type { VerificationKeys } from "./verificationKeys.ts";

/** Seconds of disagreement tolerated between the token issuer's clock and ours. */
const CLOCK_TOLERANCE_S = 5;

export interface VerifiedToken {
  grants: Grants;
  /** `exp` in ms since the epoch; undefined for a token that never expires. */
  expiresAt: number | undefined;
  /** `sub`, when the token names one (for logs and per-token limits; never the token itself). */
  subject: string | undefined;
}

export interface TokenVerifierOptions {
  issuer?: string;
  audience?: string;
}

export type TokenVerifier = (token: string) => Promise<VerifiedToken>;

function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "the token has expired; get a new one";
  if (err instanceof errors.JOSEAlgNotAllowed) return "the token's algorithm is not accepted here";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "nbf") return "the token is not valid yet (nbf)";
    return `the token's ${err.claim} claim is not accepted here`;
  }
  return "the token is malformed";
}

export function createTokenVerifier(keys: VerificationKeys, opts: TokenVerifierOptions = {}): TokenVerifier {
  const verifyOptions: JWTVerifyOptions = {
    algorithms: keys.algorithms,
    clockTolerance: CLOCK_TOLERANCE_S,
    ...(opts.issuer !== undefined ? { issuer: opts.issuer } : {}),
    ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
  };
  const resolveKey = (header: { alg?: string }) => {
    const key = header.alg === undefined ? undefined : keys.keyFor(header.alg);
    // Unreachable for algorithms outside the pinned list (jose refuses those first); kept as a backstop.
    if (key === undefined) throw new errors.JOSEAlgNotAllowed("no key for this algorithm");
    return key;
  };
  return async (token: string): Promise<VerifiedToken> => {
    let payload: Record<string, unknown>;
    try {
      payload = (await jwtVerify(token, resolveKey, verifyOptions)).payload;
    } catch (err) {
      throw invalidToken(reasonOf(err));
    }
    const grants = grantsOf(payload);
    if (!grants.ok) throw invalidToken(grants.message);
    return {
      grants: grants.value,
      expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined,
      subject: typeof payload.sub === "string" ? payload.sub : undefined,
    };
  };
}
