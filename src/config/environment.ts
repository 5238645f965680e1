/** The environment a node reads its settings from, and how one setting's text is taken from it. */

export type Env = Record<string, string | undefined>;

/** A setting's value as written, without surrounding blanks; undefined when unset or blank. */
export function givenText(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}
