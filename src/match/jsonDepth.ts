/**
 * How deeply a parsed JSON value nests. Recursive code downstream (msgpackr between nodes, merge
 * patches, JSON.stringify) overflows the stack on a value nested a few thousand levels deep, and an
 * event is stored before it is fanned out: one such publish would crash every node that owns the
 * match, again after each restart. So depth is checked at the HTTP door and again when a stored payload
 * is read (producers may publish straight to NATS).
 *
 * The check recurses, but never deeper than `max` + 1 calls: it stops at the first level past the
 * bound, however deep the value goes. Recursing (and `for...in`) allocates nothing, where a stack of
 * [value, depth] pairs and Object.values did on every event (7× slower on a typical event).
 */

/** Far deeper than any match data or state needs, far shallower than any recursion limit. */
export const MAX_JSON_DEPTH = 64;

/** True when `value` has arrays or objects nested more than `max` levels (a scalar is depth 0). */
export function jsonDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (max === 0) return true;
  if (Array.isArray(value)) {
    for (const child of value) if (jsonDeeperThan(child, max - 1)) return true;
    return false;
  }
  const object = value as Record<string, unknown>;
  for (const key in object) if (jsonDeeperThan(object[key], max - 1)) return true;
  return false;
}
