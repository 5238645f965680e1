/**
 * How deeply a parsed JSON value nests. Recursive code downstream (msgpackr between nodes, merge
 * patches, JSON.stringify) overflows the stack on a value nested a few thousand levels deep, and an
 * event is stored before it is fanned out: one such publish would crash every node that owns the
 * match, again after each restart. So depth is checked at the HTTP door and again when a stored payload
 * is read (producers may publish straight to NATS), without recursion.
 */

/** Far deeper than any match data or state needs, far shallower than any recursion limit. */
export const MAX_JSON_DEPTH = 64;

/** True when `value` has arrays or objects nested more than `max` levels (a scalar is depth 0). */
export function jsonDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth + 1 > max) return true;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const child of children) if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}
