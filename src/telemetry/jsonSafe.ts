/**
 * Turns any value into something `JSON.stringify` accepts and renders usefully, for log fields.
 * Plain `JSON.stringify` throws on cycles and bigints and prints errors as `{}`; log calls must
 * never throw and errors must keep their message and stack.
 */

/** Deeper structures are cut off: a log line is not a heap dump. */
const MAX_DEPTH = 8;
/** Longer arrays and byte buffers are summarised rather than copied into the line. */
const MAX_ARRAY_ITEMS = 100;

export function toJsonSafe(value: unknown): unknown {
  return convert(value, new Set(), 0);
}

function convert(value: unknown, ancestors: Set<object>, depth: number): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      // JSON would print NaN and the infinities as null, losing what they were.
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return value.toString();
    case "undefined":
      return undefined;
    case "symbol":
      return value.toString();
    case "function":
      return `[Function ${value.name || "anonymous"}]`;
  }
  if (value === null) return null;
  const obj = value as object;
  if (ancestors.has(obj)) return "[Circular]";
  if (depth >= MAX_DEPTH) return Array.isArray(obj) ? "[Array]" : "[Object]";
  if (ArrayBuffer.isView(obj)) return `[${obj.constructor.name} ${obj.byteLength} bytes]`;
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? "Invalid Date" : obj.toISOString();

  ancestors.add(obj);
  try {
    if (obj instanceof Error) return errorFields(obj, ancestors, depth);
    if (Array.isArray(obj)) return arrayItems(obj, ancestors, depth);
    if (obj instanceof Set) return arrayItems([...obj], ancestors, depth);
    if (obj instanceof Map) return mapEntries(obj, ancestors, depth);
    if (typeof (obj as { toJSON?: unknown }).toJSON === "function") {
      return convert((obj as { toJSON(): unknown }).toJSON(), ancestors, depth + 1);
    }
    return ownFields(obj, ancestors, depth);
  } catch {
    return "[Unserialisable]";
  } finally {
    ancestors.delete(obj);
  }
}

function arrayItems(items: readonly unknown[], ancestors: Set<object>, depth: number): unknown[] {
  const shown = items.slice(0, MAX_ARRAY_ITEMS).map((item) => convert(item, ancestors, depth + 1) ?? null);
  if (items.length > MAX_ARRAY_ITEMS) shown.push(`[${items.length - MAX_ARRAY_ITEMS} more]`);
  return shown;
}

function mapEntries(map: Map<unknown, unknown>, ancestors: Set<object>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of map) out[String(k)] = convert(v, ancestors, depth + 1);
  return out;
}

function ownFields(obj: object, ancestors: Set<object>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    let v: unknown;
    try {
      v = (obj as Record<string, unknown>)[key];
    } catch {
      v = "[Unreadable]";
    }
    out[key] = convert(v, ancestors, depth + 1);
  }
  return out;
}

/** message and stack (which Error keeps non-enumerable), plus `code`-like own fields and the cause. */
function errorFields(err: Error, ancestors: Set<object>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message, stack: err.stack };
  Object.assign(out, ownFields(err, ancestors, depth));
  if (err.cause !== undefined) out.cause = convert(err.cause, ancestors, depth + 1);
  return out;
}
