/**
 * What every command shares: option parsing (node:util parseArgs, strict), the node's URL and the bearer
 * token (options first, then TOUCHLINE_URL / TOUCHLINE_TOKEN), JSON arguments, and the usage error that
 * makes the CLI exit 2 with a pointer to `--help`.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

export type Env = Record<string, string | undefined>;

const DEFAULT_URL = "http://127.0.0.1:3000";
/** Exit codes: 0 done, 1 the node or the network said no, 2 the command line was wrong. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** The command line is wrong: say what, exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Strict parsing: an unknown option or a missing value is a UsageError naming it. */
export function parse<O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
}

export const URL_OPTION = { url: { type: "string" } } as const;
export const TOKEN_OPTION = { token: { type: "string" } } as const;
export const HELP_OPTION = { help: { type: "boolean", short: "h" } } as const;

/** --url, else TOUCHLINE_URL, else the local default; http(s) only, without a trailing slash. */
export function nodeUrl(given: string | undefined, env: Env): string {
  const raw = (given ?? env.TOUCHLINE_URL?.trim()) || DEFAULT_URL;
  const from = given !== undefined ? "--url" : env.TOUCHLINE_URL?.trim() ? "TOUCHLINE_URL" : "the default URL";
  if (!URL.canParse(raw) || !/^https?:$/.test(new URL(raw).protocol)) {
    throw new UsageError(`${from} must be an http(s) URL like ${DEFAULT_URL}, got "${raw}"`);
  }
  return raw.replace(/\/+$/, "");
}

/** --token, else TOUCHLINE_TOKEN; none is fine for a node that runs open. */
export function bearerToken(given: string | undefined, env: Env): string | undefined {
  const token = (given ?? env.TOUCHLINE_TOKEN)?.trim();
  return token ? token : undefined;
}

export function parseJson(text: string, what: string): import("../match/mergePatch.ts").Json {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${what} is not JSON (${(err as Error).message}): ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)}`);
  }
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString("utf8");
}

/** A network failure (refused, reset, DNS) as one line; fetch hides the cause one level down. */
export function networkMessage(err: unknown, url: string): string {
  const e = err as Error & { cause?: { message?: string }; code?: string };
  const detail = e.cause?.message ?? e.code ?? e.message;
  return `cannot reach ${url}: ${detail}`;
}
