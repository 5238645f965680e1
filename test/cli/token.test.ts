/**
 * `touchline token` against a real node that guards publishing (TOUCHLINE_JWT_SECRET for HS256, and an
 * ES256 public key file): the tokens it signs are accepted for what their claims cover and refused for
 * the rest, and it refuses to sign without a key or with a secret the node would refuse.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { useNode } from "../helpers/nodeFixture.ts";
import { uniqueMatch } from "../integration/touchlineApi.ts";
import { cli, type CliEnv } from "./cli.ts";

setDefaultTimeout(30_000);

const SECRET = "cli-token-test-secret-0123456789";
const keys = mkdtempSync(join(tmpdir(), "touchline-cli-keys-"));
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const PUBLIC_KEY_FILE = join(keys, "es256.pub.pem");
/** SEC1 ("BEGIN EC PRIVATE KEY"), as openssl ecparam -genkey writes it: the CLI converts it for jose. */
const PRIVATE_KEY_FILE = join(keys, "es256.key.pem");
writeFileSync(PUBLIC_KEY_FILE, ec.publicKey.export({ format: "pem", type: "spki" }));
writeFileSync(PRIVATE_KEY_FILE, ec.privateKey.export({ format: "pem", type: "sec1" }));
const rsaSmall = generateKeyPairSync("rsa", { modulusLength: 1024 });
const SMALL_RSA_FILE = join(keys, "rsa1024.pem");
writeFileSync(SMALL_RSA_FILE, rsaSmall.privateKey.export({ format: "pem", type: "pkcs8" }));

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
/** PKCS#1 ("BEGIN RSA PRIVATE KEY"). */
const RSA_KEY_FILE = join(keys, "rs256.key.pem");
writeFileSync(RSA_KEY_FILE, rsa.privateKey.export({ format: "pem", type: "pkcs1" }));

const { node } = useNode({ env: { TOUCHLINE_JWT_SECRET: SECRET, TOUCHLINE_JWT_PUBLIC_KEY_FILE: PUBLIC_KEY_FILE } });
const WITH_SECRET: CliEnv = { TOUCHLINE_JWT_SECRET: SECRET };

async function mint(args: string[], env: CliEnv = WITH_SECRET): Promise<string> {
  const r = await cli(["token", ...args], { env });
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  return r.stdout.trim();
}

async function publishWith(match: string, token: string | undefined, extra: string[] = []): Promise<{ code: number; stderr: string }> {
  return await cli(["publish", match, "goal", '{"minute": 1}', "--url", node.url, ...(token ? ["--token", token] : []), ...extra]);
}

describe("touchline token", () => {
  test("an HS256 publish token works for its matches only; the node refuses no token (401) and other matches (403)", async () => {
    const [a, b, other] = [uniqueMatch("tok-a"), uniqueMatch("tok-b"), uniqueMatch("tok-c")];
    const token = await mint(["--publish", `${a},${b}`, "--ttl", "1h"]);
    expect(decodeProtectedHeader(token).alg).toBe("HS256");
    const claims = decodeJwt(token);
    expect(claims["touchline.publish"]).toEqual([a, b]);
    expect(claims["touchline.subscribe"]).toBeUndefined();
    expect(claims.sub).toBe("touchline-cli");
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(Math.abs(claims.iat! - Date.now() / 1000)).toBeLessThan(10);

    expect((await publishWith(a, token)).code).toBe(0);
    expect((await publishWith(b, token)).code).toBe(0);
    const forbidden = await publishWith(other, token);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toStartWith("touchline publish: 403 ");
    const anonymous = await publishWith(a, undefined);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toStartWith("touchline publish: 401 ");
  });

  test("'*' grants every match; TOUCHLINE_TOKEN carries it to publish; --ttl and --subject are honoured", async () => {
    const token = await mint(["--publish", "*", "--ttl", "90s", "--subject", "ci-producer"]);
    const claims = decodeJwt(token);
    expect(claims["touchline.publish"]).toBe("*");
    expect(claims.exp! - claims.iat!).toBe(90);
    expect(claims.sub).toBe("ci-producer");
    const r = await cli(["publish", uniqueMatch("tok-any"), "kickoff"], { env: { TOUCHLINE_URL: node.url, TOUCHLINE_TOKEN: token } });
    expect(r.code).toBe(0);
    expect(decodeJwt(await mint(["--publish", "a,*"]))["touchline.publish"]).toBe("*");
    expect(decodeJwt(await mint(["--publish", "a", "--ttl", "7d"])).exp! - decodeJwt(await mint(["--publish", "a"])).iat!).toBeGreaterThanOrEqual(
      7 * 86_400 - 5,
    );
    expect(decodeJwt(await mint(["--publish", "a", "--ttl", "none"])).exp).toBeUndefined();
  });

  test("a subscribe token reads a private match that is refused without it", async () => {
    const match = uniqueMatch("tok-private");
    const publisher = await mint(["--publish", match]);
    expect((await publishWith(match, publisher, ["--private"])).code).toBe(0);
    const reader = await mint(["--subscribe", match]);
    expect(decodeJwt(reader)["touchline.subscribe"]).toEqual([match]);
    expect((await fetch(`${node.url}/matches/${match}`)).status).not.toBe(200);
    expect((await fetch(`${node.url}/matches/${match}`, { headers: { Authorization: `Bearer ${publisher}` } })).status).not.toBe(200);
    const read = await fetch(`${node.url}/matches/${match}`, { headers: { Authorization: `Bearer ${reader}` } });
    expect(read.status).toBe(200);
  });

  test("--private-key signs ES256 (a SEC1 file) that the node checks with its public key; the secret is not needed", async () => {
    const match = uniqueMatch("tok-es");
    const token = await mint(["--publish", match, "--private-key", PRIVATE_KEY_FILE], {});
    expect(decodeProtectedHeader(token).alg).toBe("ES256");
    expect((await publishWith(match, token)).code).toBe(0);
  });

  test("--private-key with an RSA key (a PKCS#1 file) signs RS256", async () => {
    const token = await mint(["--publish", "a", "--private-key", RSA_KEY_FILE], {});
    expect(decodeProtectedHeader(token).alg).toBe("RS256");
    const { payload } = await jwtVerify(token, rsa.publicKey, { algorithms: ["RS256"] });
    expect(payload["touchline.publish"]).toEqual(["a"]);
  });

  test("iss and aud come from TOUCHLINE_JWT_ISSUER / TOUCHLINE_JWT_AUDIENCE, as the node reads them, or the options", async () => {
    const fromEnv = decodeJwt(
      await mint(["--publish", "a"], { ...WITH_SECRET, TOUCHLINE_JWT_ISSUER: "https://id.example", TOUCHLINE_JWT_AUDIENCE: "touchline" }),
    );
    expect(fromEnv).toMatchObject({ iss: "https://id.example", aud: "touchline" });
    const fromOptions = decodeJwt(await mint(["--publish", "a", "--issuer", "me", "--audience", "them"]));
    expect(fromOptions).toMatchObject({ iss: "me", aud: "them" });
  });

  test("refuses clearly, printing no token: no secret nor key, a secret the node would refuse, a bad key, no claims, a bad TTL", async () => {
    const cases: [string[], CliEnv, string][] = [
      [["--publish", "a"], {}, "nothing to sign with: set TOUCHLINE_JWT_SECRET"],
      [["--publish", "a"], { TOUCHLINE_JWT_SECRET: "" }, "nothing to sign with"],
      [["--publish", "a"], { TOUCHLINE_JWT_SECRET: "short" }, "at least 16 characters"],
      [["--publish", "a", "--private-key", join(keys, "missing.pem")], {}, "cannot read"],
      [["--publish", "a", "--private-key", PUBLIC_KEY_FILE], {}, "is not a PEM private key"],
      [["--publish", "a", "--private-key", SMALL_RSA_FILE], {}, "at least 2048 bits"],
      [["--ttl", "1h"], WITH_SECRET, "grants nothing"],
      [["--publish", "a", "--ttl", "1 hour"], WITH_SECRET, "is not a duration"],
      [["--publish", "a", "--ttl", "0"], WITH_SECRET, "is not a duration"],
      [["--publish", "bad id!"], WITH_SECRET, "is not a match id"],
      [["--publish", ","], WITH_SECRET, "needs match ids"],
    ];
    for (const [args, env, message] of cases) {
      const r = await cli(["token", ...args], { env });
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(r.stderr).toContain(message);
    }
  });
});
