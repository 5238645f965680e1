/**
 * What the security tests share: minting tokens (HS256 with a secret, RS256/ES256 with generated key
 * pairs whose public half is written as a PEM file for the node), hand-made bad tokens, and requests
 * that carry a token by each transport.
 */
import { SignJWT, exportSPKI, generateKeyPair, type CryptoKey } from "jose";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SECRET = "security-test-secret-0123456789abcdef";
const utf8 = new TextEncoder();

export interface Claims {
  publish?: string[] | "*";
  subscribe?: string[] | "*";
  /** Seconds from now; negative for a token that has expired. Omitted: one hour. */
  expiresIn?: number;
  /** Seconds from now before which the token is not valid. */
  notBeforeIn?: number;
  extra?: Record<string, unknown>;
}

function payloadOf(c: Claims): Record<string, unknown> {
  return {
    ...(c.publish !== undefined ? { "touchline.publish": c.publish } : {}),
    ...(c.subscribe !== undefined ? { "touchline.subscribe": c.subscribe } : {}),
    ...c.extra,
  };
}

const nowS = () => Math.floor(Date.now() / 1000);

async function sign(c: Claims, alg: string, key: Uint8Array | CryptoKey): Promise<string> {
  const jwt = new SignJWT(payloadOf(c)).setProtectedHeader({ alg }).setIssuedAt().setSubject("security-test");
  jwt.setExpirationTime(nowS() + (c.expiresIn ?? 3600));
  if (c.notBeforeIn !== undefined) jwt.setNotBefore(nowS() + c.notBeforeIn);
  return await jwt.sign(key);
}

export function hsToken(c: Claims, secret = SECRET): Promise<string> {
  return sign(c, "HS256", utf8.encode(secret));
}

export interface KeyPairFixture {
  alg: "RS256" | "ES256";
  publicKeyFile: string;
  publicKeyPem: string;
  token(c: Claims): Promise<string>;
  cleanup(): void;
}

/** A fresh key pair; the public key as a PEM (SPKI) file for TOUCHLINE_JWT_PUBLIC_KEY_FILE. */
export async function keyPair(alg: "RS256" | "ES256"): Promise<KeyPairFixture> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicKeyPem = await exportSPKI(publicKey);
  const dir = mkdtempSync(join(tmpdir(), "touchline-keys-"));
  const publicKeyFile = join(dir, `${alg}.pem`);
  writeFileSync(publicKeyFile, publicKeyPem);
  return {
    alg,
    publicKeyFile,
    publicKeyPem,
    token: (c) => sign(c, alg, privateKey),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** An unsigned token (`alg: none`) claiming everything. */
export function noneToken(): string {
  return `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ "touchline.publish": "*", "touchline.subscribe": "*", exp: nowS() + 3600 })}.`;
}

/** The classic confusion: HS256 "signed" with the text of the node's RSA/EC public key as the secret. */
export function confusedToken(publicKeyPem: string): Promise<string> {
  return sign({ publish: "*", subscribe: "*" }, "HS256", utf8.encode(publicKeyPem));
}

export type Transport = "header" | "cookie" | "query";
export const TRANSPORTS: Transport[] = ["header", "cookie", "query"];

/** The URL and headers that carry `token` by `transport`. */
export function withToken(url: string, token: string | undefined, transport: Transport = "header"): { url: string; headers: Record<string, string> } {
  if (token === undefined) return { url, headers: {} };
  if (transport === "header") return { url, headers: { authorization: `Bearer ${token}` } };
  if (transport === "cookie") return { url, headers: { cookie: `theme=dark; touchline_token=${token}` } };
  const u = new URL(url);
  u.searchParams.set("access_token", token);
  return { url: u.toString(), headers: {} };
}

export interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`expected JSON (status ${res.status}), got ${JSON.stringify(text.slice(0, 200))}`);
  }
  return { status: res.status, headers: res.headers, json };
}

export async function publishWith(
  baseUrl: string,
  match: string,
  body: Record<string, unknown>,
  token?: string,
  transport: Transport = "header",
): Promise<Answer> {
  const t = withToken(`${baseUrl}/matches/${match}/events`, token, transport);
  return answer(await fetch(t.url, { method: "POST", headers: { "content-type": "application/json", ...t.headers }, body: JSON.stringify(body) }));
}

export async function getWith(url: string, token?: string, transport: Transport = "header", headers: Record<string, string> = {}): Promise<Answer> {
  const t = withToken(url, token, transport);
  return answer(await fetch(t.url, { headers: { ...t.headers, ...headers } }));
}

/** Waits until the node's own view of `match` reached `id` (it follows JetStream a moment behind the 201). */
export async function untilApplied(baseUrl: string, match: string, id: string, token: string | undefined, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const a = await getWith(`${baseUrl}/matches/${match}`, token);
    if (a.status === 200 && a.json.id === id) return;
    if (Date.now() > deadline) throw new Error(`${match} did not reach ${id}: ${a.status} ${JSON.stringify(a.json)}`);
    await Bun.sleep(10);
  }
}
