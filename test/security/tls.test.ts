/**
 * HTTPS served by the node itself (TLS_CERT_FILE / TLS_KEY_FILE), with a self-signed certificate made
 * here by openssl for 127.0.0.1: the client trusts exactly that certificate (no verification switched
 * off), publishes and reads a stream over TLS, and a plain-HTTP request to the port gets no answer.
 * Start-up refuses one file without the other, a key that is not the certificate's, and garbage.
 */
import { selfSignedCertificate } from "../helpers/selfSignedCert.ts";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { startNats, startNode, waitFor, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { uniqueMatch } from "../integration/touchlineApi.ts";
import { SseConnection } from "../helpers/sse.ts";
import { expectAdmitted, expectStreamRefusal } from "../helpers/refusal.ts";
import { SECRET, hsToken } from "./securityFixtures.ts";

setDefaultTimeout(40_000);

let nats: NatsFixture;
let node: NodeFixture;
let dir: string;
let certFile: string;
let keyFile: string;
let ca: string;
let httpsUrl: string;

const trusted = () => ({ tls: { ca } }) as RequestInit;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "touchline-tls-"));
  ({ cert: certFile, key: keyFile } = selfSignedCertificate(dir, "node"));
  ca = readFileSync(certFile, "utf8");
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url, ready: false, env: { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, TOUCHLINE_JWT_SECRET: SECRET } });
  httpsUrl = `https://127.0.0.1:${node.port}`;
  await waitFor(async () => (await fetch(`${httpsUrl}/readyz`, trusted())).status === 200, 20_000, `HTTPS node ready\n${node.output()}`);
});

afterAll(async () => {
  if (node?.proc.exitCode === null) await node.kill();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a node serving HTTPS itself", () => {
  test("publish and a live stream over TLS, trusting only the test certificate", async () => {
    const match = uniqueMatch("tls");
    const token = await hsToken({ publish: "*", subscribe: "*" });
    const post = (type: string) =>
      fetch(`${httpsUrl}/matches/${match}/events`, {
        ...trusted(),
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ type, private: true }),
      });
    expect((await post("kickoff")).status).toBe(201);

    const abort = new AbortController();
    const res = await fetch(`${httpsUrl}/matches/${match}/events`, { ...trusted(), signal: abort.signal, headers: { cookie: `touchline_token=${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const reader = res.body!.getReader();
    let text = "";
    const dec = new TextDecoder();
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${needle}: ${text}`);
        text += dec.decode(value, { stream: true });
      }
    };
    await readUntil("event: snapshot");
    const goal = (await (await post("goal")).json()) as { id: string };
    await readUntil(`id: ${goal.id}\nevent: goal`);
    abort.abort();
  });

  test("the certificate is what the node presents: an untrusting client refuses it", async () => {
    await expect(fetch(`${httpsUrl}/healthz`)).rejects.toThrow();
  });

  test("plain HTTP to the TLS port gets no HTTP answer", async () => {
    const res = await fetch(`http://127.0.0.1:${node.port}/healthz`).catch((e: Error) => e);
    expect(res instanceof Response && res.status === 200).toBe(false);
  });
});

describe("TLS behind a PROXY header (PROXY_PROTOCOL)", () => {
  let proxied: NodeFixture;

  beforeAll(async () => {
    proxied = await startNode({
      natsUrl: nats.url,
      ready: false,
      env: {
        TLS_CERT_FILE: certFile,
        TLS_KEY_FILE: keyFile,
        PROXY_PROTOCOL: "true",
        TRUST_PROXY: "loopback",
        LIMITS_EXEMPT: "none",
        MAX_STREAMS_PER_ADDRESS: "1",
        STREAM_RATE_PER_ADDRESS: "0",
      },
    });
    // No header: the connection is its own client, so the readiness probe needs nothing special.
    await waitFor(async () => (await fetch(`https://127.0.0.1:${proxied.port}/readyz`, trusted())).status === 200, 20_000, `node ready\n${proxied.output()}`);
  });

  afterAll(async () => {
    if (proxied?.proc.exitCode === null) await proxied.kill();
  });

  /**
   * The balancer's header in clear, then TLS inside, as haproxy's send-proxy does; the answer is read
   * as it arrives by the tests' SSE reader (test/helpers/sse.ts), which resolves once its head is in.
   */
  async function streamThroughHeader(client: string, match: string): Promise<{ conn: SseConnection; socket: TLSSocket }> {
    const raw = net.connect({ host: "127.0.0.1", port: proxied.port });
    await new Promise<void>((resolve, reject) => raw.once("connect", resolve).once("error", reject));
    raw.write(`PROXY TCP4 ${client} 127.0.0.1 40000 443\r\n`);
    const socket = tlsConnect({ socket: raw, ca, servername: "localhost" });
    await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
    const conn = new SseConnection();
    socket.on("data", (b: Buffer) => conn.onBytes(b));
    for (const ended of ["end", "close", "error"]) socket.on(ended, () => conn.onClose());
    // The reader calls end, pause, resume and terminate on its socket.
    conn.attach({
      end: () => socket.end(),
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      terminate: () => socket.destroy(),
    } as unknown as Parameters<SseConnection["attach"]>[0]);
    socket.write(`GET /matches/${match}/events HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\n\r\n`);
    await conn.headReceived;
    return { conn, socket };
  }

  test("the header is read in clear, TLS is spliced through untouched, and limits count the client it names", async () => {
    const match = uniqueMatch("tlspp");
    const first = await streamThroughHeader("198.51.100.40", match);
    await expectAdmitted(first.conn);
    // The client the header names holds its one stream: refused, in the form a browser survives.
    const again = await streamThroughHeader("198.51.100.40", match);
    const refusal = await expectStreamRefusal(again.conn, { error: "rate_limited", retryAfterS: 5 });
    expect(refusal.message).toContain("open streams");
    const other = await streamThroughHeader("198.51.100.41", match);
    await expectAdmitted(other.conn);
    for (const s of [first, again, other]) s.socket.destroy();
  });
});

describe("TLS settings are checked at start-up", () => {
  async function startupError(env: Record<string, string>): Promise<{ code: number; output: string }> {
    const n = await startNode({ natsUrl: nats.url, env, ready: false });
    return { code: await n.proc.exited, output: n.output() };
  }

  test("one file without the other, a key of another certificate, garbage: exit 2 naming the variable", async () => {
    const other = selfSignedCertificate(dir, "other");
    const garbage = join(dir, "garbage.pem");
    writeFileSync(garbage, "not a certificate");
    const cases: [Record<string, string>, string][] = [
      [{ TLS_CERT_FILE: certFile }, "TLS_KEY_FILE"],
      [{ TLS_KEY_FILE: keyFile }, "TLS_CERT_FILE"],
      [{ TLS_CERT_FILE: certFile, TLS_KEY_FILE: other.key }, "TLS_KEY_FILE"],
      [{ TLS_CERT_FILE: garbage, TLS_KEY_FILE: keyFile }, "TLS_CERT_FILE"],
      [{ TLS_CERT_FILE: certFile, TLS_KEY_FILE: garbage }, "TLS_KEY_FILE"],
      [{ TLS_CERT_FILE: join(dir, "missing.crt"), TLS_KEY_FILE: keyFile }, "TLS_CERT_FILE"],
    ];
    for (const [env, variable] of cases) {
      const { code, output } = await startupError(env);
      expect({ env, code }).toEqual({ env, code: 2 });
      expect(output).toContain(`invalid ${variable}`);
    }
  });
});
