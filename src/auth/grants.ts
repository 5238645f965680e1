/**
 * What a verified token allows: the `touchline.publish` and `touchline.subscribe` claims, each either
 * `"*"` (every match) or an array of match ids. A claim that is absent grants nothing.
 */
import { MATCH_ID } from "../match/event.ts";

export const PUBLISH_CLAIM = "touchline.publish";
export const SUBSCRIBE_CLAIM = "touchline.subscribe";
export const EVERY_MATCH = "*";

/** `"*"` or the exact match ids a claim names. */
export type MatchGrant = typeof EVERY_MATCH | ReadonlySet<string>;

export interface Grants {
  publish: MatchGrant;
  subscribe: MatchGrant;
}

const NO_MATCHES: MatchGrant = new Set<string>();

export function covers(grant: MatchGrant, match: string): boolean {
  return grant === EVERY_MATCH || grant.has(match);
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * Reads one claim. A claim of the wrong shape is an error: a token that says something we cannot read
 * is refused rather than half-understood.
 */
function parseGrant(value: unknown, claim: string): Parsed<MatchGrant> {
  if (value === undefined) return { ok: true, value: NO_MATCHES };
  if (value === EVERY_MATCH) return { ok: true, value: EVERY_MATCH };
  if (!Array.isArray(value)) return { ok: false, message: `the ${claim} claim must be "*" or an array of match ids` };
  const ids = new Set<string>();
  for (const id of value) {
    if (id === EVERY_MATCH) return { ok: true, value: EVERY_MATCH };
    if (typeof id !== "string" || !MATCH_ID.test(id)) return { ok: false, message: `the ${claim} claim holds something that is not a match id` };
    ids.add(id);
  }
  return { ok: true, value: ids };
}

export function grantsOf(payload: Record<string, unknown>): Parsed<Grants> {
  const publish = parseGrant(payload[PUBLISH_CLAIM], PUBLISH_CLAIM);
  if (!publish.ok) return publish;
  const subscribe = parseGrant(payload[SUBSCRIBE_CLAIM], SUBSCRIBE_CLAIM);
  if (!subscribe.ok) return subscribe;
  return { ok: true, value: { publish: publish.value, subscribe: subscribe.value } };
}
