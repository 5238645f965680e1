/**
 * A small JSON Schema (2020-12 subset) checker for the OpenAPI document's schemas: `$ref` into the
 * document, `type` (one or several), `required`, `properties`, `items`, `minItems`/`maxItems`, `enum`,
 * `const`, `pattern`, `minimum`/`maximum`, `minLength`/`maxLength`, `maxProperties`, `oneOf`, `anyOf`,
 * `allOf`. Enough to check that the node's real answers are what the document says; returns the
 * problems found (empty: valid).
 */
type Schema = Record<string, unknown>;

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function typeMatches(want: string, v: unknown): boolean {
  const t = typeOf(v);
  return want === t || (want === "number" && t === "integer");
}

export function resolveRef(root: Schema, ref: string): Schema {
  if (!ref.startsWith("#/")) throw new Error(`only local $refs: ${ref}`);
  let at: unknown = root;
  for (const part of ref.slice(2).split("/")) {
    at = (at as Record<string, unknown> | undefined)?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    if (at === undefined) throw new Error(`unresolved $ref ${ref}`);
  }
  return at as Schema;
}

export function validate(root: Schema, schema: Schema, value: unknown, path = "$"): string[] {
  const errors: string[] = [];
  if (typeof schema.$ref === "string") errors.push(...validate(root, resolveRef(root, schema.$ref), value, path));
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => typeMatches(t, value))) return [...errors, `${path}: expected ${types.join("|")}, got ${typeOf(value)}`];
  }
  if ("const" in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
  if (typeof value === "string") {
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) errors.push(`${path}: "${value}" does not match ${schema.pattern}`);
    if (typeof schema.minLength === "number" && value.length < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) errors.push(`${path}: longer than ${schema.maxLength}`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) errors.push(`${path}: below ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) errors.push(`${path}: above ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) errors.push(`${path}: fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) errors.push(`${path}: more than ${schema.maxItems} items`);
    if (schema.items) for (const [i, item] of value.entries()) errors.push(...validate(root, schema.items as Schema, item, `${path}[${i}]`));
  }
  if (typeOf(value) === "object") {
    const obj = value as Record<string, unknown>;
    for (const key of (schema.required as string[] | undefined) ?? []) if (!(key in obj)) errors.push(`${path}: missing ${key}`);
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const [key, sub] of Object.entries(props)) if (key in obj) errors.push(...validate(root, sub, obj[key], `${path}.${key}`));
    if (typeof schema.maxProperties === "number" && Object.keys(obj).length > schema.maxProperties)
      errors.push(`${path}: more than ${schema.maxProperties} properties`);
  }
  for (const sub of (schema.allOf as Schema[] | undefined) ?? []) errors.push(...validate(root, sub, value, path));
  if (Array.isArray(schema.oneOf)) {
    const passing = (schema.oneOf as Schema[]).filter((s) => validate(root, s, value, path).length === 0).length;
    if (passing !== 1) errors.push(`${path}: matches ${passing} of oneOf (want exactly 1)`);
  }
  if (Array.isArray(schema.anyOf) && !(schema.anyOf as Schema[]).some((s) => validate(root, s, value, path).length === 0))
    errors.push(`${path}: matches none of anyOf`);
  return errors;
}

/** Every `$ref` anywhere in `node` resolves in `root`; returns the ones that do not. */
export function unresolvedRefs(root: Schema, node: unknown = root): string[] {
  if (node === null || typeof node !== "object") return [];
  const out: string[] = [];
  for (const [key, v] of Object.entries(node as Record<string, unknown>)) {
    if (key === "$ref" && typeof v === "string") {
      try {
        resolveRef(root, v);
      } catch {
        out.push(v);
      }
    } else {
      out.push(...unresolvedRefs(root, v));
    }
  }
  return out;
}
