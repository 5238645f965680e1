import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "./configError.ts";
import { loadNatsConfig } from "./natsConfig.ts";

const DEFAULT_URL = "nats://127.0.0.1:4222";
const dir = mkdtempSync(join(tmpdir(), "touchline-nats-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const SEED = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
const CREDS =
  "-----BEGIN NATS USER JWT-----\neyJ0eXAi.x.y\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\nSUAM\n------END USER NKEY SEED------\n";
const PEM_TEXT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/** The message of the ConfigError `load` throws. */
function refusal(env: Record<string, string>): string {
  try {
    loadNatsConfig(env, DEFAULT_URL);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("accepted");
}

describe("NATS_URL", () => {
  test("unset: the default server, no credentials, no TLS files", () => {
    expect(loadNatsConfig({}, DEFAULT_URL)).toEqual({ urls: [DEFAULT_URL], auth: undefined, tls: undefined });
  });

  test("several servers, spaces around commas, host:port without a scheme", () => {
    expect(loadNatsConfig({ NATS_URL: " nats://a:4222 , tls://b:4223,c:4224 " }, DEFAULT_URL).urls).toEqual(["nats://a:4222", "tls://b:4223", "c:4224"]);
  });

  test("user and password in the URLs are taken out of them (percent-encoding undone)", () => {
    const c = loadNatsConfig({ NATS_URL: "nats://app:p%40ss%3Aw0rd@a:4222,nats://app:p%40ss%3Aw0rd@b:4222" }, DEFAULT_URL);
    expect(c.urls).toEqual(["nats://a:4222", "nats://b:4222"]);
    expect(c.auth).toEqual({ kind: "user", user: "app", password: "p@ss:w0rd" });
  });

  test("a token in the URL", () => {
    const c = loadNatsConfig({ NATS_URL: "nats://s3cr3t@a:4222" }, DEFAULT_URL);
    expect(c.urls).toEqual(["nats://a:4222"]);
    expect(c.auth).toEqual({ kind: "token", token: "s3cr3t" });
  });

  test("servers naming different credentials are refused", () => {
    expect(refusal({ NATS_URL: "nats://app:one@a:4222,nats://app:two@b:4222" })).toContain("different credentials");
  });

  test("a malformed entry is refused without echoing it (it may hold a password)", () => {
    const message = refusal({ NATS_URL: "nats://app:hunter2@a:4222/path" });
    expect(message).toContain("NATS_URL");
    expect(message).not.toContain("hunter2");
  });
});

describe("one way of authenticating", () => {
  test("NATS_USER with NATS_PASSWORD", () => {
    expect(loadNatsConfig({ NATS_USER: "app", NATS_PASSWORD: "pw" }, DEFAULT_URL).auth).toEqual({ kind: "user", user: "app", password: "pw" });
  });

  test("NATS_USER without NATS_PASSWORD, and the other way round, are refused", () => {
    expect(refusal({ NATS_USER: "app" })).toContain("NATS_PASSWORD");
    expect(refusal({ NATS_PASSWORD: "pw" })).toContain("NATS_USER");
  });

  test("NATS_TOKEN", () => {
    expect(loadNatsConfig({ NATS_TOKEN: "t0k" }, DEFAULT_URL).auth).toEqual({ kind: "token", token: "t0k" });
  });

  test("NATS_CREDS_FILE holds a user JWT and its seed", () => {
    const creds = file("ok.creds", CREDS);
    const c = loadNatsConfig({ NATS_CREDS_FILE: creds }, DEFAULT_URL);
    expect(c.auth?.kind).toBe("creds");
    expect(new TextDecoder().decode((c.auth as { creds: Uint8Array }).creds)).toBe(CREDS);
    expect(refusal({ NATS_CREDS_FILE: file("bad.creds", "just a seed\n") })).toContain("not a NATS credentials file");
    expect(refusal({ NATS_CREDS_FILE: join(dir, "missing.creds") })).toContain("cannot read");
  });

  test("NATS_NKEY_SEED_FILE holds a user seed", () => {
    const c = loadNatsConfig({ NATS_NKEY_SEED_FILE: file("ok.nk", `${SEED}\n`) }, DEFAULT_URL);
    expect(c.auth).toEqual({ kind: "nkey", file: join(dir, "ok.nk"), seed: new TextEncoder().encode(SEED) });
    // An account seed (SA...) is not a user's.
    expect(refusal({ NATS_NKEY_SEED_FILE: file("account.nk", `SA${SEED.slice(2)}`) })).toContain("NKey user seed");
  });

  test("two ways at once are refused, naming both", () => {
    expect(refusal({ NATS_USER: "app", NATS_PASSWORD: "pw", NATS_TOKEN: "t" })).toContain("NATS_USER, NATS_TOKEN");
    expect(refusal({ NATS_URL: "nats://app:pw@a:4222", NATS_TOKEN: "t" })).toContain("credentials in NATS_URL, NATS_TOKEN");
  });
});

describe("TLS files", () => {
  test("a CA alone; a client certificate with its key", () => {
    const ca = file("ca.pem", PEM_TEXT);
    const cert = file("client.pem", PEM_TEXT);
    const key = file("client.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
    expect(loadNatsConfig({ NATS_TLS_CA_FILE: ca }, DEFAULT_URL).tls).toEqual({ caFile: ca });
    expect(loadNatsConfig({ NATS_TLS_CA_FILE: ca, NATS_TLS_CERT_FILE: cert, NATS_TLS_KEY_FILE: key }, DEFAULT_URL).tls).toEqual({
      caFile: ca,
      certFile: cert,
      keyFile: key,
    });
  });

  test("a certificate without its key, a file that is not PEM, a missing file: refused", () => {
    expect(refusal({ NATS_TLS_CERT_FILE: file("alone.pem", PEM_TEXT) })).toContain("go together");
    expect(refusal({ NATS_TLS_CA_FILE: file("ca.txt", "not pem") })).toContain("not a PEM file");
    expect(refusal({ NATS_TLS_CA_FILE: join(dir, "none.pem") })).toContain("cannot read");
  });
});

test("a password with a raw @ is refused with how to write it", () => {
  const message = refusal({ NATS_URL: "nats://app:p@ss@a:4222" });
  expect(message).toContain("percent-encoded");
  expect(message).not.toContain("p@ss");
});
