/**
 * The security settings of a node (README, Security), validated at start-up like every other knob:
 * token verification beyond the HS256 secret, allowed cross-origin callers, and HTTPS.
 */
import { type KeyObject, X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError } from "./configError.ts";
import { type Env, givenText } from "./environment.ts";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** PEM text, read once at start-up. */
  cert: string;
  key: string;
}

export interface SecurityConfig {
  /** PEM (SPKI) public key for RS256/ES256 tokens; read and checked by auth/verificationKeys.ts. */
  jwtPublicKeyFile: string | undefined;
  /** When set, a token's `iss` / `aud` must match. */
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  /** Exact origins (`https://example.com`) allowed cross-origin with credentials; `*` for any origin, public matches only. */
  corsOrigins: string[];
  tls: TlsFiles | undefined;
  /**
   * HTTP2=true: with TLS, serve HTTP/2 (ALPN `h2`) beside HTTP/1.1. Off by default: on HTTP/2 Bun drops
   * the streams' `Connection: close` without closing the connection, so an ended stream's reconnect
   * stays on this node instead of going back through the balancer (README, "HTTP/2"). Never without TLS.
   */
  http2: boolean;
}

export const ANY_ORIGIN = "*";

/** `*`, or origins exactly as browsers send them: scheme, host, optional port; no path, no trailing slash. */
export function parseCorsOrigins(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === "") return [];
  const out: string[] = [];
  for (const entry of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (entry === ANY_ORIGIN) {
      out.push(entry);
      continue;
    }
    let origin: string | undefined;
    try {
      const u = new URL(entry);
      if (u.protocol === "http:" || u.protocol === "https:") origin = u.origin;
    } catch {
      /* reported below */
    }
    if (origin === undefined || origin !== entry) {
      throw new ConfigError(
        "CORS_ORIGINS",
        `"${entry}" is not an exact origin like https://scores.example.com (scheme and host, no path or trailing slash), nor *`,
      );
    }
    out.push(origin);
  }
  return [...new Set(out)];
}

function readPem(file: string, variable: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(variable, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Both files or neither; the certificate and key must parse and belong together. */
function loadTlsFiles(certFile: string | undefined, keyFile: string | undefined): TlsFiles | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined) throw new ConfigError("TLS_CERT_FILE", "TLS_KEY_FILE is set, so TLS_CERT_FILE must be too");
  if (keyFile === undefined) throw new ConfigError("TLS_KEY_FILE", "TLS_CERT_FILE is set, so TLS_KEY_FILE must be too");
  const cert = readPem(certFile, "TLS_CERT_FILE");
  const key = readPem(keyFile, "TLS_KEY_FILE");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError("TLS_CERT_FILE", `${certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError("TLS_KEY_FILE", `${keyFile} is not a PEM private key: ${(err as Error).message}`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new ConfigError("TLS_KEY_FILE", `${keyFile} is not the key of the certificate in ${certFile}`);
  return { certFile, keyFile, cert, key };
}

/** HTTP2: off unless asked for; asking for it without TLS is a mistake worth stopping for. */
export function http2Setting(raw: string | undefined, tls: boolean): boolean {
  const value = raw?.trim().toLowerCase();
  if (value === undefined || value === "") return false;
  if (TRUE_WORDS.has(value)) {
    if (!tls) throw new ConfigError("HTTP2", "HTTP/2 is served only with TLS: set TLS_CERT_FILE and TLS_KEY_FILE, or unset HTTP2");
    return true;
  }
  if (FALSE_WORDS.has(value)) return false;
  throw new ConfigError("HTTP2", `expected true or false, got "${raw}"`);
}

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off"]);

export function loadSecurityConfig(env: Env): SecurityConfig {
  const tls = loadTlsFiles(givenText(env, "TLS_CERT_FILE"), givenText(env, "TLS_KEY_FILE"));
  return {
    jwtPublicKeyFile: givenText(env, "TOUCHLINE_JWT_PUBLIC_KEY_FILE"),
    jwtIssuer: givenText(env, "TOUCHLINE_JWT_ISSUER"),
    jwtAudience: givenText(env, "TOUCHLINE_JWT_AUDIENCE"),
    corsOrigins: parseCorsOrigins(env.CORS_ORIGINS),
    tls,
    http2: http2Setting(env.HTTP2, tls !== undefined),
  };
}
