/**
 * How a node reaches NATS: the servers, how it proves who it is, and which certificates it trusts. A
 * production NATS asks for credentials and often TLS; each form NATS offers has one setting, and
 * credentials written into NATS_URL (`nats://user:password@host`, `nats://token@host`), which the NATS
 * client would ignore, are taken out of the URL and used as if set on their own.
 *
 * What is wrong stops the node at start with one line naming the setting: two ways of authenticating
 * at once (the server would see only one), a user without a password, a file that cannot be read or
 * is not what it should hold. Secrets never reach a log: the URLs kept here carry no credentials.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "./configError.ts";
import { type Env, givenText } from "./environment.ts";

/** One way of authenticating to NATS, read at start-up. */
export type NatsAuth =
  | { kind: "user"; user: string; password: string }
  | { kind: "token"; token: string }
  /** A JWT and its NKey seed, as `nsc` writes them (decentralized auth, NGS/Synadia Cloud). */
  | { kind: "creds"; file: string; creds: Uint8Array }
  /** An NKey user seed (`SU...`): the server knows the public key. */
  | { kind: "nkey"; file: string; seed: Uint8Array };

export interface NatsTls {
  /** PEM file of the CA(s) that signed the servers' certificates (else the system's). */
  caFile?: string;
  /** Client certificate and key, for servers that verify clients (mutual TLS). */
  certFile?: string;
  keyFile?: string;
}

export interface NatsConfig {
  /** Server URLs without credentials: safe to log. */
  urls: string[];
  auth: NatsAuth | undefined;
  /** Set when a TLS file is given; a server that requires TLS is met with TLS either way. */
  tls: NatsTls | undefined;
}

const URL_FORM = /^(nats|tls|ws|wss):\/\/([^\s/@]+@)?[^\s/@]+(:\d+)?\/?$/;
const HOST_PORT_FORM = /^[^\s/:@]+:\d+$/;
const CREDS_JWT = "-----BEGIN NATS USER JWT-----";
const CREDS_SEED = "-----BEGIN USER NKEY SEED-----";
/** An NKey user seed: base32, starting with S (seed) and U (user). */
const USER_SEED = /^SU[A-Z2-7]{56}$/;
const PEM = "-----BEGIN ";

function readSetting(name: string, file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(name, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** A TLS file must at least be PEM: a wrong path found at start, not at the first reconnect. */
function pemFile(env: Env, name: string): string | undefined {
  const file = givenText(env, name);
  if (file === undefined) return undefined;
  if (!readSetting(name, file).includes(PEM)) throw new ConfigError(name, `${file} is not a PEM file`);
  return file;
}

/** The credentials written into one URL, and the URL without them. */
function splitCredentials(raw: string): { url: string; credentials: string | undefined } {
  const m = /^([a-z]+:\/\/)([^\s/@]+)@(.+)$/.exec(raw);
  if (!m) return { url: raw, credentials: undefined };
  return { url: `${m[1]}${m[3]}`, credentials: m[2] };
}

/** What a URL's credentials name: `user:password` or a token (percent-encoding undone). */
function urlAuth(credentials: string): NatsAuth {
  const colon = credentials.indexOf(":");
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new ConfigError("NATS_URL", "the credentials in a NATS URL are not valid percent-encoding");
    }
  };
  if (colon < 0) return { kind: "token", token: decode(credentials) };
  return { kind: "user", user: decode(credentials.slice(0, colon)), password: decode(credentials.slice(colon + 1)) };
}

export function loadNatsConfig(env: Env, fallbackUrl: string): NatsConfig {
  const raw = (givenText(env, "NATS_URL") ?? fallbackUrl)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (raw.length === 0) throw new ConfigError("NATS_URL", "names no server");
  const urls: string[] = [];
  const inUrls = new Set<string>();
  for (const u of raw) {
    if (!URL_FORM.test(u) && !HOST_PORT_FORM.test(u)) {
      // The value may hold a password: the message names the form, not the value.
      throw new ConfigError(
        "NATS_URL",
        "an entry is not a NATS server URL (nats://host:port, optionally nats://user:password@host:port with @ : / in them percent-encoded)",
      );
    }
    const { url, credentials } = splitCredentials(u);
    urls.push(url);
    if (credentials !== undefined) inUrls.add(credentials);
  }
  if (inUrls.size > 1) throw new ConfigError("NATS_URL", "its servers name different credentials; a node authenticates one way to all of them");

  const ways: NatsAuth[] = [];
  const fromUrl = inUrls.size === 1 ? urlAuth([...inUrls][0]!) : undefined;
  if (fromUrl) ways.push(fromUrl);
  const user = givenText(env, "NATS_USER");
  const password = env.NATS_PASSWORD;
  if (user !== undefined) {
    if (password === undefined || password === "") throw new ConfigError("NATS_PASSWORD", "must be set with NATS_USER");
    ways.push({ kind: "user", user, password });
  } else if (password !== undefined && password !== "") {
    throw new ConfigError("NATS_USER", "must be set with NATS_PASSWORD");
  }
  const token = env.NATS_TOKEN;
  if (token !== undefined && token !== "") ways.push({ kind: "token", token });
  const credsFile = givenText(env, "NATS_CREDS_FILE");
  if (credsFile !== undefined) {
    const text = readSetting("NATS_CREDS_FILE", credsFile);
    if (!text.includes(CREDS_JWT) || !text.includes(CREDS_SEED)) {
      throw new ConfigError("NATS_CREDS_FILE", `${credsFile} is not a NATS credentials file (a user JWT and its NKey seed, as nsc writes them)`);
    }
    ways.push({ kind: "creds", file: credsFile, creds: new TextEncoder().encode(text) });
  }
  const seedFile = givenText(env, "NATS_NKEY_SEED_FILE");
  if (seedFile !== undefined) {
    const seed = readSetting("NATS_NKEY_SEED_FILE", seedFile).trim();
    if (!USER_SEED.test(seed)) throw new ConfigError("NATS_NKEY_SEED_FILE", `${seedFile} does not hold an NKey user seed (SU...)`);
    ways.push({ kind: "nkey", file: seedFile, seed: new TextEncoder().encode(seed) });
  }
  if (ways.length > 1) {
    const named = ways.map((w) => (w === fromUrl ? "credentials in NATS_URL" : settingOf(w))).join(", ");
    throw new ConfigError("NATS_URL", `authenticate to NATS one way, not several (${named})`);
  }

  const caFile = pemFile(env, "NATS_TLS_CA_FILE");
  const certFile = pemFile(env, "NATS_TLS_CERT_FILE");
  const keyFile = pemFile(env, "NATS_TLS_KEY_FILE");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile === undefined ? "NATS_TLS_CERT_FILE" : "NATS_TLS_KEY_FILE", "NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together");
  }
  const tls = caFile || certFile ? { ...(caFile ? { caFile } : {}), ...(certFile ? { certFile, keyFile } : {}) } : undefined;
  return { urls, auth: ways[0], tls };
}

function settingOf(auth: NatsAuth): string {
  switch (auth.kind) {
    case "user":
      return "NATS_USER";
    case "token":
      return "NATS_TOKEN";
    case "creds":
      return "NATS_CREDS_FILE";
    case "nkey":
      return "NATS_NKEY_SEED_FILE";
  }
}
