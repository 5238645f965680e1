/** JSON Merge Patch (RFC 7386): pure, never mutates its inputs. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const result: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    // defineProperty, not assignment: a key named __proto__ must be stored, not change the prototype.
    else Object.defineProperty(result, key, { value: mergePatch(result[key], value), enumerable: true, writable: true, configurable: true });
  }
  return result;
}

/** A match's state is always an object; a patch that replaces the root with a non-object is folded into {}. */
export function applyStatePatch(state: Record<string, Json>, patch: Json | undefined): Record<string, Json> {
  if (patch === undefined) return state;
  const next = mergePatch(state, patch);
  return isObject(next) ? next : {};
}
