/**
 * A NATS in operator mode (decentralized auth), as `nsc` would set it up: an operator, a system account,
 * an account with JetStream and a user of it, their JWTs signed with NKeys, the server's configuration
 * (a memory resolver preloaded with the accounts) and the user's credentials file. Written by hand so
 * the tests need no `nsc`: a JWT is a header, claims and an ed25519 signature of the issuer's key.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { nkeys } from "@nats-io/nats-core";

const utf8 = new TextEncoder();

function base64url(bytes: Uint8Array | string): string {
  return Buffer.from(typeof bytes === "string" ? utf8.encode(bytes) : bytes).toString("base64url");
}

function signedJwt(issuer: nkeys.KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const header = base64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const claims = base64url(
    JSON.stringify({
      jti: crypto.randomUUID().replaceAll("-", "").toUpperCase(),
      iat: Math.floor(Date.now() / 1000),
      iss: issuer.getPublicKey(),
      name,
      sub: subject,
      nats: { ...nats, version: 2 },
    }),
  );
  return `${header}.${claims}.${base64url(issuer.sign(utf8.encode(`${header}.${claims}`)))}`;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

/** Writes the server's configuration and a user's credentials into `dir`; returns their paths. */
export function operatorMode(dir: string): { serverConfig: string; credsFile: string } {
  const operator = nkeys.createOperator();
  const system = nkeys.createAccount();
  const account = nkeys.createAccount();
  const user = nkeys.createUser();
  const operatorJwt = signedJwt(operator, operator.getPublicKey(), "touchline-test", { type: "operator", system_account: system.getPublicKey() });
  const systemJwt = signedJwt(operator, system.getPublicKey(), "SYS", { type: "account", limits: UNLIMITED });
  const accountJwt = signedJwt(operator, account.getPublicKey(), "touchline", {
    type: "account",
    limits: { ...UNLIMITED, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
  });
  const userJwt = signedJwt(account, user.getPublicKey(), "node", { type: "user", pub: {}, sub: {}, subs: -1, data: -1, payload: -1 });

  const operatorFile = join(dir, "operator.jwt");
  writeFileSync(operatorFile, operatorJwt);
  const serverConfig = join(dir, "operator-mode.conf");
  writeFileSync(
    serverConfig,
    [
      `operator: ${operatorFile}`,
      `system_account: ${system.getPublicKey()}`,
      "resolver: MEMORY",
      "resolver_preload: {",
      `  ${system.getPublicKey()}: ${systemJwt}`,
      `  ${account.getPublicKey()}: ${accountJwt}`,
      "}",
      "",
    ].join("\n"),
  );
  const credsFile = join(dir, "node.creds");
  writeFileSync(
    credsFile,
    [
      "-----BEGIN NATS USER JWT-----",
      userJwt,
      "------END NATS USER JWT------",
      "",
      "-----BEGIN USER NKEY SEED-----",
      new TextDecoder().decode(user.getSeed()),
      "------END USER NKEY SEED------",
      "",
    ].join("\n"),
  );
  return { serverConfig, credsFile };
}
