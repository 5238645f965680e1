/**
 * The keys tokens are checked against, and the algorithms each may be used with, pinned at start-up:
 * HS256 with TOUCHLINE_JWT_SECRET, and RS256 or ES256 with the public key in
 * TOUCHLINE_JWT_PUBLIC_KEY_FILE (the algorithm follows the key: RSA gives RS256, EC P-256 gives ES256).
 *
 * Each algorithm resolves to exactly one key, so a token cannot pick which key checks it: an HS256
 * token signed with the public key's text (the classic confusion) is checked against the secret, or
 * refused outright when no secret is configured. `none` is never in the list.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { importSPKI, type CryptoKey } from "jose";
import { ConfigError } from "../config/config.ts";

export type TokenAlgorithm = "HS256" | "RS256" | "ES256";

export interface VerificationKeys {
  /** The algorithms a token may name; anything else (including `none`) is refused. */
  algorithms: TokenAlgorithm[];
  keyFor(alg: string): Uint8Array | CryptoKey | undefined;
}

export interface KeySettings {
  jwtSecret: string | undefined;
  jwtPublicKeyFile: string | undefined;
}

const SECRET_VARIABLE = "TOUCHLINE_JWT_SECRET";
const PUBLIC_KEY_VARIABLE = "TOUCHLINE_JWT_PUBLIC_KEY_FILE";
/** jose refuses shorter RSA keys for RS256; saying so at start-up beats a 401 on every request. */
const MIN_RSA_BITS = 2048;

function algorithmOf(key: KeyObject): TokenAlgorithm {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "rsa") {
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS) throw new ConfigError(PUBLIC_KEY_VARIABLE, `an RSA key must have at least ${MIN_RSA_BITS} bits`);
    return "RS256";
  }
  if (key.asymmetricKeyType === "ec" && details.namedCurve === "prime256v1") return "ES256";
  throw new ConfigError(PUBLIC_KEY_VARIABLE, `expected an RSA key (RS256) or an EC P-256 key (ES256), got ${key.asymmetricKeyType ?? "an unknown key"}`);
}

async function loadPublicKey(file: string): Promise<{ alg: TokenAlgorithm; key: CryptoKey }> {
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(PUBLIC_KEY_VARIABLE, `cannot read ${file}: ${(err as Error).message}`);
  }
  if (!pem.includes("-----BEGIN PUBLIC KEY-----")) {
    throw new ConfigError(PUBLIC_KEY_VARIABLE, `${file} must hold a PEM public key (-----BEGIN PUBLIC KEY-----, SPKI)`);
  }
  let parsed: KeyObject;
  try {
    parsed = createPublicKey(pem);
  } catch (err) {
    throw new ConfigError(PUBLIC_KEY_VARIABLE, `${file} is not a readable public key: ${(err as Error).message}`);
  }
  const alg = algorithmOf(parsed);
  try {
    return { alg, key: await importSPKI(pem, alg) };
  } catch (err) {
    throw new ConfigError(PUBLIC_KEY_VARIABLE, `${file} cannot be used for ${alg}: ${(err as Error).message}`);
  }
}

/** Undefined when neither a secret nor a public key is configured: the node runs open. */
export async function loadVerificationKeys(settings: KeySettings): Promise<VerificationKeys | undefined> {
  const byAlg = new Map<TokenAlgorithm, Uint8Array | CryptoKey>();
  if (settings.jwtSecret !== undefined) {
    if (settings.jwtSecret.length === 0) throw new ConfigError(SECRET_VARIABLE, "must not be empty");
    byAlg.set("HS256", new TextEncoder().encode(settings.jwtSecret));
  }
  if (settings.jwtPublicKeyFile !== undefined) {
    const { alg, key } = await loadPublicKey(settings.jwtPublicKeyFile);
    byAlg.set(alg, key);
  }
  if (byAlg.size === 0) return undefined;
  return {
    algorithms: [...byAlg.keys()],
    keyFor: (alg) => byAlg.get(alg as TokenAlgorithm),
  };
}
