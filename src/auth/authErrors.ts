/**
 * The two refusals of the Security section as the contract's JSON errors: 401 when the request has no
 * usable token (none, malformed, badly signed, wrong algorithm, expired), 403 when its token is good
 * but does not cover what was asked. Both carry the RFC 6750 `WWW-Authenticate` challenge.
 */
import { HttpError } from "../errors/httpError.ts";

const REALM = 'Bearer realm="touchline"';

/** Quotes a value for a `WWW-Authenticate` parameter (no quotes or backslashes inside). */
function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, "'")}"`;
}

/** No token was given where one is needed. */
export function tokenRequired(message: string): HttpError {
  return new HttpError(401, "unauthorized", message, { "WWW-Authenticate": REALM });
}

/** A token was given but cannot be trusted. */
export function invalidToken(message: string): HttpError {
  return new HttpError(401, "unauthorized", message, {
    "WWW-Authenticate": `${REALM}, error="invalid_token", error_description=${quoted(message)}`,
  });
}

/** A good token that does not cover the request. */
export function insufficientClaim(message: string): HttpError {
  return new HttpError(403, "forbidden", message, {
    "WWW-Authenticate": `${REALM}, error="insufficient_scope", error_description=${quoted(message)}`,
  });
}
