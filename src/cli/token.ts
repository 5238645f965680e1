/**
 * `touchline token --publish a,b --subscribe c --ttl 1h`: signs a JWT the node accepts (src/auth): the
 * `touchline.publish` / `touchline.subscribe` claims, `sub`, `iat`, `exp`, and `iss`/`aud` when the node
 * checks them. HS256 with TOUCHLINE_JWT_SECRET, or RS256/ES256 with a private key file whose public half
 * the node reads from TOUCHLINE_JWT_PUBLIC_KEY_FILE. Never signs without a key.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { importPKCS8, SignJWT, type CryptoKey } from "jose";
import { EVERY_MATCH, PUBLISH_CLAIM, SUBSCRIBE_CLAIM } from "../auth/grants.ts";
import { MATCH_ID } from "../match/event.ts";
import { TOKEN_USAGE } from "./help.ts";
import { EXIT_OK, HELP_OPTION, parse, UsageError, type Env } from "./args.ts";

const OPTIONS = {
  ...HELP_OPTION,
  publish: { type: "string" },
  subscribe: { type: "string" },
  ttl: { type: "string", default: "1h" },
  subject: { type: "string", default: "touchline-cli" },
  issuer: { type: "string" },
  audience: { type: "string" },
  "private-key": { type: "string" },
} as const;

/** The node refuses shorter secrets at start-up (config.ts); a token signed with one could never verify. */
const MIN_SECRET_LENGTH = 16;
const MIN_RSA_BITS = 2048;
const SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const NEVER = "none";

type Grant = typeof EVERY_MATCH | string[];

/** `*`, or a comma-separated list of match ids (a `*` among them means every match, as the node reads it). */
function grantOf(raw: string, option: string): Grant {
  const ids = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length === 0) throw new UsageError(`--${option} needs match ids (a,b,c) or '*'`);
  if (ids.includes(EVERY_MATCH)) return EVERY_MATCH;
  const bad = ids.find((id) => !MATCH_ID.test(id));
  if (bad !== undefined) throw new UsageError(`--${option}: "${bad}" is not a match id ([A-Za-z0-9_-], 1 to 64 characters)`);
  return [...new Set(ids)];
}

/** `90s`, `30m`, `1h`, `7d`, or plain seconds; undefined for `none`. */
function ttlSeconds(raw: string): number | undefined {
  if (raw.trim().toLowerCase() === NEVER) return undefined;
  const m = /^(\d+)\s*([smhd]?)$/.exec(raw.trim());
  const seconds = m ? Number(m[1]) * SECONDS[m[2] || "s"]! : NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new UsageError(`--ttl "${raw}" is not a duration like 90s, 30m, 1h or 7d (or 'none')`);
  return seconds;
}

interface SigningKey {
  alg: "HS256" | "RS256" | "ES256";
  key: Uint8Array | CryptoKey;
}

async function privateKeyFrom(file: string): Promise<SigningKey> {
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`--private-key: cannot read ${file}: ${(err as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new UsageError(`--private-key: ${file} is not a PEM private key: ${(err as Error).message}`);
  }
  const details = key.asymmetricKeyDetails ?? {};
  let alg: SigningKey["alg"];
  if (key.asymmetricKeyType === "rsa") {
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS)
      throw new UsageError(`--private-key: an RSA key must have at least ${MIN_RSA_BITS} bits (the node refuses shorter ones)`);
    alg = "RS256";
  } else if (key.asymmetricKeyType === "ec" && details.namedCurve === "prime256v1") {
    alg = "ES256";
  } else {
    throw new UsageError(`--private-key: expected an RSA key (RS256) or an EC P-256 key (ES256), got ${key.asymmetricKeyType ?? "an unknown key"}`);
  }
  // PKCS#1 and SEC1 files ("BEGIN RSA/EC PRIVATE KEY") are accepted too: jose takes PKCS#8.
  const pkcs8 = key.export({ format: "pem", type: "pkcs8" }).toString();
  return { alg, key: await importPKCS8(pkcs8, alg) };
}

function secretFrom(env: Env): SigningKey {
  const secret = env.TOUCHLINE_JWT_SECRET;
  if (secret === undefined || secret === "") {
    throw new UsageError(
      "nothing to sign with: set TOUCHLINE_JWT_SECRET to the node's secret (HS256), or pass --private-key <file> " +
        "(RS256/ES256; the node holds the public key in TOUCHLINE_JWT_PUBLIC_KEY_FILE)",
    );
  }
  if (secret.length < MIN_SECRET_LENGTH)
    throw new UsageError(`TOUCHLINE_JWT_SECRET must be at least ${MIN_SECRET_LENGTH} characters (the node refuses a shorter one)`);
  return { alg: "HS256", key: new TextEncoder().encode(secret) };
}

export async function tokenCommand(argv: string[], env: Env): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS);
  if (values.help) {
    console.log(TOKEN_USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.publish === undefined && values.subscribe === undefined) {
    throw new UsageError("a token without --publish or --subscribe grants nothing: give at least one");
  }
  const claims: Record<string, Grant> = {};
  if (values.publish !== undefined) claims[PUBLISH_CLAIM] = grantOf(values.publish, "publish");
  if (values.subscribe !== undefined) claims[SUBSCRIBE_CLAIM] = grantOf(values.subscribe, "subscribe");
  const ttl = ttlSeconds(values.ttl);
  const signing = values["private-key"] !== undefined ? await privateKeyFrom(values["private-key"]) : secretFrom(env);

  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: signing.alg, typ: "JWT" }).setSubject(values.subject).setIssuedAt(now);
  if (ttl !== undefined) jwt.setExpirationTime(now + ttl);
  const issuer = values.issuer ?? (env.TOUCHLINE_JWT_ISSUER?.trim() || undefined);
  const audience = values.audience ?? (env.TOUCHLINE_JWT_AUDIENCE?.trim() || undefined);
  if (issuer !== undefined) jwt.setIssuer(issuer);
  if (audience !== undefined) jwt.setAudience(audience);
  console.log(await jwt.sign(signing.key));
  return EXIT_OK;
}
