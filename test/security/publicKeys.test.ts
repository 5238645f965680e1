/**
 * RS256 and ES256 tokens checked with a public key from TOUCHLINE_JWT_PUBLIC_KEY_FILE (key pairs made
 * here with jose, the public half written as PEM), against real nodes: the right key verifies, the
 * wrong key, `alg: none`, and an HS256 token "signed" with the public key's text (algorithm confusion)
 * do not, also on a node that has a secret too. A bad key file stops the node at start-up, naming it.
 * TOUCHLINE_JWT_ISSUER / TOUCHLINE_JWT_AUDIENCE, when set, must match the token.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPairSync } from "node:crypto";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openSse } from "../helpers/sse.ts";
import { uniqueMatch } from "../integration/touchlineApi.ts";
import { SECRET, confusedToken, hsToken, keyPair, noneToken, publishWith, type KeyPairFixture } from "./securityFixtures.ts";

setDefaultTimeout(40_000);

let nats: NatsFixture;
const nodes: NodeFixture[] = [];
const keys: KeyPairFixture[] = [];
let scratch: string;

beforeAll(async () => {
  nats = await startNats();
  scratch = mkdtempSync(join(tmpdir(), "touchline-badkeys-"));
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
  for (const k of keys) k.cleanup();
  rmSync(scratch, { recursive: true, force: true });
  await nats?.stop();
});

for (const alg of ["RS256", "ES256"] as const) {
  describe(`${alg} with a public key file`, () => {
    let node: NodeFixture;
    let pair: KeyPairFixture;
    let other: KeyPairFixture;

    beforeAll(async () => {
      pair = await keyPair(alg);
      other = await keyPair(alg);
      keys.push(pair, other);
      node = await startNode({ natsUrl: nats.url, env: { TOUCHLINE_JWT_PUBLIC_KEY_FILE: pair.publicKeyFile } });
      nodes.push(node);
    });

    test("a token signed with the private key publishes and reads a private match", async () => {
      const match = uniqueMatch(alg.toLowerCase());
      const a = await publishWith(node.url, match, { type: "kickoff", private: true }, await pair.token({ publish: [match] }));
      expect(a.status).toBe(201);
      const conn = await openSse(`${node.url}/matches/${match}/events`, { headers: { authorization: `Bearer ${await pair.token({ subscribe: [match] })}` } });
      expect(conn.status).toBe(200);
      await conn.untilEvents(1);
      expect(conn.events[0]!.type).toBe("snapshot");
      await conn.close();
    });

    test("another key's signature, alg none, HS256 with the public key as secret, an HS256 token on a node without a secret: 401", async () => {
      const match = uniqueMatch("refused");
      const cases: [string, string][] = [
        ["signed by another key", await other.token({ publish: "*" })],
        ["alg none", noneToken()],
        ["HS256 keyed with the public key PEM", await confusedToken(pair.publicKeyPem)],
        ["HS256 with a secret this node does not have", await hsToken({ publish: "*" })],
      ];
      for (const [what, token] of cases) {
        const a = await publishWith(node.url, match, { type: "goal" }, token);
        expect({ what, status: a.status, error: a.json.error }).toEqual({ what, status: 401, error: "unauthorized" });
      }
    });

    test("an expired token: 401", async () => {
      const a = await publishWith(node.url, uniqueMatch("exp"), { type: "goal" }, await pair.token({ publish: "*", expiresIn: -30 }));
      expect(a.status).toBe(401);
      expect(String(a.json.message)).toContain("expired");
    });
  });
}

describe("a node with both a secret and a public key", () => {
  test("accepts each algorithm with its own key only: HS256 keyed with the PEM text is still refused", async () => {
    const pair = await keyPair("RS256");
    keys.push(pair);
    const node = await startNode({ natsUrl: nats.url, env: { TOUCHLINE_JWT_SECRET: SECRET, TOUCHLINE_JWT_PUBLIC_KEY_FILE: pair.publicKeyFile } });
    nodes.push(node);
    const match = uniqueMatch("both");
    expect((await publishWith(node.url, match, { type: "a" }, await hsToken({ publish: "*" }))).status).toBe(201);
    expect((await publishWith(node.url, match, { type: "b" }, await pair.token({ publish: "*" }))).status).toBe(201);
    expect((await publishWith(node.url, match, { type: "c" }, await confusedToken(pair.publicKeyPem))).status).toBe(401);
    expect((await publishWith(node.url, match, { type: "d" }, noneToken())).status).toBe(401);
  });
});

describe("an unusable key stops the node at start-up with one line naming the variable", () => {
  async function startupError(env: Record<string, string>): Promise<{ code: number; output: string }> {
    const node = await startNode({ natsUrl: nats.url, env, ready: false });
    const code = await node.proc.exited;
    return { code, output: node.output() };
  }

  test("missing file, not PEM, a private key, an unsupported curve, a short RSA key", async () => {
    const notPem = join(scratch, "not.pem");
    writeFileSync(notPem, "hello");
    const privatePem = join(scratch, "private.pem");
    writeFileSync(privatePem, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    const p384 = join(scratch, "p384.pem");
    writeFileSync(p384, generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey.export({ type: "spki", format: "pem" }) as string);
    const shortRsa = join(scratch, "rsa1024.pem");
    writeFileSync(shortRsa, generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }) as string);
    for (const file of [join(scratch, "missing.pem"), notPem, privatePem, p384, shortRsa]) {
      const { code, output } = await startupError({ TOUCHLINE_JWT_PUBLIC_KEY_FILE: file });
      expect({ file, code }).toEqual({ file, code: 2 });
      expect(output).toContain("invalid TOUCHLINE_JWT_PUBLIC_KEY_FILE");
    }
  });
});

describe("TOUCHLINE_JWT_ISSUER and TOUCHLINE_JWT_AUDIENCE", () => {
  test("when set, a token must name that issuer and audience", async () => {
    const node = await startNode({
      natsUrl: nats.url,
      env: { TOUCHLINE_JWT_SECRET: SECRET, TOUCHLINE_JWT_ISSUER: "https://id.example.com", TOUCHLINE_JWT_AUDIENCE: "touchline" },
    });
    nodes.push(node);
    const match = uniqueMatch("iss-aud");
    const cases: [string, Record<string, unknown>, number][] = [
      ["both right", { iss: "https://id.example.com", aud: "touchline" }, 201],
      ["audience in a list", { iss: "https://id.example.com", aud: ["other", "touchline"] }, 201],
      ["no claims", {}, 401],
      ["another audience", { iss: "https://id.example.com", aud: "billing" }, 401],
      ["another issuer", { iss: "https://evil.example.com", aud: "touchline" }, 401],
    ];
    for (const [what, extra, status] of cases) {
      const a = await publishWith(node.url, match, { type: "goal" }, await hsToken({ publish: "*", extra }));
      expect({ what, status: a.status }).toEqual({ what, status });
    }
  });
});
