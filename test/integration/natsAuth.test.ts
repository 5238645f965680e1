/**
 * A node against a NATS that asks who it is, as a production NATS does: user and password (set on
 * their own or written into NATS_URL), a token, an NKey, a credentials file (operator mode, JWTs), and
 * TLS with a private CA, mutual or not. Each
 * server is a real nats-server started with that requirement; each node must become ready, store an
 * event and deliver it on a stream. A node with a wrong password stops (exit 1) saying why, and never
 * prints the password.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nkeys } from "@nats-io/nats-core";
import { type NatsFixture, type NodeFixture, startNats, startNode } from "../helpers/cluster.ts";
import { operatorMode } from "../helpers/natsOperator.ts";
import { deliversOneEvent } from "../helpers/roundTrip.ts";
import { selfSignedCertificate } from "../helpers/selfSignedCert.ts";

const dir = mkdtempSync(join(tmpdir(), "touchline-nats-auth-"));
const servers: NatsFixture[] = [];
const nodes: NodeFixture[] = [];

afterAll(async () => {
  await Promise.all(nodes.map((n) => (n.proc.exitCode === null ? n.kill() : Promise.resolve())));
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function server(args: string[]): Promise<NatsFixture> {
  const s = await startNats({ args });
  servers.push(s);
  return s;
}

async function node(natsUrl: string, env: Record<string, string>, ready = true): Promise<NodeFixture> {
  const n = await startNode({ natsUrl, env, ready });
  nodes.push(n);
  return n;
}

describe("user and password", () => {
  const password = "pw-Zq8x/41@!";
  let nats: NatsFixture;

  test("NATS_USER and NATS_PASSWORD", async () => {
    nats = await server(["--user", "touchline", "--pass", password]);
    const n = await node(nats.url, { NATS_USER: "touchline", NATS_PASSWORD: password });
    await deliversOneEvent(n.url, n.url, `auth-${n.port}`);
  }, 60_000);

  test("written into NATS_URL (percent-encoded), taken out of it", async () => {
    const url = nats.url.replace("nats://", `nats://touchline:${encodeURIComponent(password)}@`);
    const n = await node(url, {});
    await deliversOneEvent(n.url, n.url, `auth-${n.port}`);
    const view = (await (await fetch(`${n.url}/cluster`)).json()) as { nodes: unknown[] };
    expect(view.nodes.length).toBe(2);
  }, 60_000);

  test("a wrong password stops the node (exit 1) with the server's answer, never the password", async () => {
    const wrong = "not-the-Password-123";
    const n = await node(nats.url.replace("nats://", `nats://touchline:${wrong}@`), { LOG_LEVEL: "info" }, false);
    const code = await Promise.race([n.proc.exited, Bun.sleep(20_000).then(() => "still running")]);
    expect(code).toBe(1);
    expect(n.output()).toContain("could not join the cluster");
    expect(n.output()).toContain("Authorization Violation");
    expect(n.output()).not.toContain(wrong);
    expect(n.output()).toContain(nats.url); // the URL it tried, without its credentials
  }, 60_000);

  test("without credentials the server refuses the node", async () => {
    const n = await node(nats.url, {}, false);
    expect(await Promise.race([n.proc.exited, Bun.sleep(20_000).then(() => "still running")])).toBe(1);
    expect(n.output()).toContain("Authorization Violation");
  }, 60_000);
});

test("NATS_TOKEN", async () => {
  const nats = await server(["--auth", "s3cret-token-value"]);
  const n = await node(nats.url, { NATS_TOKEN: "s3cret-token-value" });
  await deliversOneEvent(n.url, n.url, `auth-${n.port}`);
}, 60_000);

test("NATS_NKEY_SEED_FILE: the server knows the user's public key", async () => {
  const user = nkeys.createUser();
  const config = join(dir, "nkey.conf");
  writeFileSync(config, `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }\n`);
  const seedFile = join(dir, "user.nk");
  writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`);
  const nats = await server(["-c", config]);
  const n = await node(nats.url, { NATS_NKEY_SEED_FILE: seedFile });
  await deliversOneEvent(n.url, n.url, `auth-${n.port}`);
}, 60_000);

test("NATS_CREDS_FILE: a NATS in operator mode (JWTs), the user's credentials file", async () => {
  const { serverConfig, credsFile } = operatorMode(dir);
  const nats = await server(["-c", serverConfig]);
  const n = await node(nats.url, { NATS_CREDS_FILE: credsFile });
  await deliversOneEvent(n.url, n.url, `auth-${n.port}`);
  const anonymous = await node(nats.url, {}, false);
  expect(await Promise.race([anonymous.proc.exited, Bun.sleep(20_000).then(() => "still running")])).toBe(1);
  expect(anonymous.output()).toContain("Authorization Violation");
}, 60_000);

describe("TLS with a private CA", () => {
  const serverCert = selfSignedCertificate(dir, "nats-server");
  const clientCert = selfSignedCertificate(dir, "touchline-client", "touchline-node");

  test("NATS_TLS_CA_FILE: a server requiring TLS whose certificate the CA signed", async () => {
    const nats = await server(["--tls", "--tlscert", serverCert.cert, "--tlskey", serverCert.key]);
    const n = await node(nats.url, { NATS_TLS_CA_FILE: serverCert.cert });
    await deliversOneEvent(n.url, n.url, `auth-${n.port}`);
    // Without the CA the certificate is not trusted: no connection, in clear or otherwise.
    const untrusting = await node(nats.url, {}, false);
    expect(await Promise.race([untrusting.proc.exited, Bun.sleep(20_000).then(() => "still running")])).toBe(1);
  }, 60_000);

  test("NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE: a server that verifies clients", async () => {
    const nats = await server(["--tlsverify", "--tlscert", serverCert.cert, "--tlskey", serverCert.key, "--tlscacert", clientCert.cert]);
    const n = await node(nats.url, { NATS_TLS_CA_FILE: serverCert.cert, NATS_TLS_CERT_FILE: clientCert.cert, NATS_TLS_KEY_FILE: clientCert.key });
    await deliversOneEvent(n.url, n.url, `auth-${n.port}`);
    // Without a certificate the server would end the handshake, and under Bun the client is not told why
    // (it waited out its 20 s connect timeout): the server's INFO says it verifies clients, and the node
    // stops at once naming the settings it lacks.
    const anonymous = await node(nats.url, { NATS_TLS_CA_FILE: serverCert.cert }, false);
    const started = performance.now();
    expect(await Promise.race([anonymous.proc.exited, Bun.sleep(20_000).then(() => "still running")])).toBe(1);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(anonymous.output()).toContain("could not join the cluster");
    expect(anonymous.output()).toContain("verifies client certificates");
    expect(anonymous.output()).toContain("NATS_TLS_CERT_FILE");
  }, 60_000);
});
