/**
 * HTTP/2 (README, "HTTP/2"): a node with TLS_CERT_FILE/TLS_KEY_FILE and HTTP2=true serves `h2` by ALPN
 * beside HTTP/1.1; without HTTP2 (the default) or with HTTP2=false it offers HTTP/1.1 only. A real
 * nats-server, real nodes, a self-signed certificate made here by openssl, and `node:http2` (under
 * Bun), a frame-level client (test/helpers/h2Frames.ts) and curl as clients:
 *
 * - 20 event streams on ONE connection each get their snapshot and every published event exactly once;
 *   streams cancelled by the client (RST_STREAM) are freed on the node while the others go on.
 * - Flow control: far more than the 64 KiB windows goes through one connection, nothing lost.
 * - A stream the client stops reading is cut as slow without holding up the others on its connection.
 * - The streams' `Connection: close` (so an ended stream ends its TCP connection on HTTP/1.1) is
 *   dropped by Bun on HTTP/2, where connection-specific headers are forbidden, and kept on HTTP/1.1.
 * - What keeps HTTP/2 off by default: a refused stream's HTTP/2 connection stays open (no GOAWAY), so
 *   the client's reconnect comes back to the same full node instead of going through the balancer.
 * - curl --http2 sees `HTTP/2 200` and the events; with HTTP2=false ALPN gives http/1.1.
 */
import { selfSignedCertificate } from "../helpers/selfSignedCert.ts";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { ClientHttp2Session } from "node:http2";
import { startNats, startNode, waitFor, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openH2Session, openH2Sse, type H2Sse } from "../helpers/h2Sse.ts";
import { RawH2Connection } from "../helpers/h2Frames.ts";
import { SseParser, type SseEvent } from "../../src/sse/parse.ts";
import { seqOf } from "../helpers/eventIds.ts";
import { parsePrometheus } from "../helpers/promParse.ts";
import { uniqueMatch } from "./touchlineApi.ts";
import { ConfigError } from "../../src/config/config.ts";
import { http2Setting } from "../../src/config/securityConfig.ts";

setDefaultTimeout(60_000);

/** The default: a reader of a burst of large events is never cut. */
const CLIENT_BUFFER_BYTES = 1_048_576;
const STREAMS_ON_ONE_CONNECTION = 20;

let dir: string;
let certFile: string;
let keyFile: string;
let ca: string;
let nats: NatsFixture;
/** TLS and HTTP2=true. */
let h2Node: NodeFixture;
/** TLS with HTTP2=false. */
let h1Node: NodeFixture;
const https = (n: NodeFixture) => `https://127.0.0.1:${n.port}`;
const trusted = () => ({ tls: { ca } }) as RequestInit;

async function startTlsNode(env: Record<string, string> = {}): Promise<NodeFixture> {
  const node = await startNode({ natsUrl: nats.url, ready: false, env: { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, ...env } });
  await waitFor(async () => (await fetch(`${https(node)}/readyz`, trusted())).status === 200, 20_000, `TLS node ready\n${node.output()}`);
  return node;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "touchline-h2-"));
  ({ cert: certFile, key: keyFile } = selfSignedCertificate(dir, "node"));
  ca = readFileSync(certFile, "utf8");
  nats = await startNats();
  [h2Node, h1Node] = await Promise.all([startTlsNode({ HTTP2: "true", CLIENT_BUFFER_BYTES: String(CLIENT_BUFFER_BYTES) }), startTlsNode({ HTTP2: "false" })]);
});

afterAll(async () => {
  for (const n of [h2Node, h1Node]) if (n?.proc.exitCode === null) await n.kill();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function publishOk(node: NodeFixture, match: string, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${https(node)}/matches/${match}/events`, {
    ...trusted(),
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { id: string };
  if (res.status !== 201) throw new Error(`publish answered ${res.status} ${JSON.stringify(json)}`);
  return json.id;
}

/** Waits until the node's view of the match is at `id`, so a snapshot taken now carries it. */
async function untilLatest(node: NodeFixture, match: string, id: string): Promise<void> {
  await waitFor(
    async () => {
      const res = await fetch(`${https(node)}/matches/${match}`, trusted());
      return res.status === 200 && ((await res.json()) as { id: string }).id === id;
    },
    5000,
    `${match} at ${id}`,
  );
}

async function metric(node: NodeFixture, name: string): Promise<number> {
  const families = parsePrometheus(await (await fetch(`${https(node)}/metrics`, trusted())).text());
  let total = 0;
  for (const family of families.values()) for (const s of family.samples) if (s.name === name) total += s.value;
  return total;
}

/** A match with one event and its id, the node's view caught up (so every snapshot names it). */
async function startedMatch(node: NodeFixture, prefix: string): Promise<{ match: string; kickoff: string }> {
  const match = uniqueMatch(prefix);
  const kickoff = await publishOk(node, match, { type: "kickoff" });
  await untilLatest(node, match, kickoff);
  return { match, kickoff };
}

/** The snapshot, then exactly the published events in order: no loss, no duplicate. */
function expectExact(s: H2Sse, kickoff: string, published: string[], type: string): void {
  expect(s.events[0]!.type).toBe("snapshot");
  expect(s.events[0]!.lastEventId).toBe(kickoff);
  const live = s.events.slice(1);
  expect(live.map((e) => e.lastEventId)).toEqual(published);
  expect(live.every((e) => e.type === type)).toBe(true);
}

function sortedBySeq(ids: string[]): string[] {
  return [...ids].sort((a, b) => seqOf(a) - seqOf(b));
}

/** An event stream on a RawH2Connection, parsed as it comes. */
class FrameSse {
  readonly events: SseEvent[] = [];
  readonly id: number;
  ok = false;
  reset: number | undefined;
  private readonly parser = new SseParser({ onEvent: (e) => void this.events.push(e) });
  private readonly decoder = new TextDecoder();

  constructor(conn: RawH2Connection, path: string) {
    this.id = conn.get(path, {
      onHeaders: (ok) => void (this.ok = ok),
      onData: (bytes) => this.parser.feed(this.decoder.decode(bytes, { stream: true })),
      onReset: (code) => void (this.reset = code),
    });
  }
}

/** ALPN as a client offering h2 and http/1.1 gets it. */
async function negotiated(node: NodeFixture): Promise<string | false> {
  const socket = tlsConnect({ host: "127.0.0.1", port: node.port, ca, servername: "localhost", ALPNProtocols: ["h2", "http/1.1"] });
  await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  const alpn = socket.alpnProtocol ?? false;
  socket.destroy();
  return alpn;
}

/** One HTTP/1.1 request over TLS (ALPN http/1.1): the response head, and whether the server then closed the connection. */
async function http1Request(node: NodeFixture, head: string, waitCloseMs = 3000): Promise<{ head: string; serverClosed: boolean; socket: TLSSocket }> {
  const socket = tlsConnect({ host: "127.0.0.1", port: node.port, ca, servername: "localhost", ALPNProtocols: ["http/1.1"] });
  await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  expect(socket.alpnProtocol).toBe("http/1.1");
  let text = "";
  let serverClosed = false;
  socket.on("data", (b: Buffer) => void (text += b.toString("latin1")));
  socket.on("end", () => void (serverClosed = true));
  socket.on("close", () => void (serverClosed = true));
  socket.write(head);
  await waitFor(async () => text.includes("\r\n\r\n"), 5000, "an HTTP/1.1 response head");
  const deadline = Date.now() + waitCloseMs;
  while (!serverClosed && Date.now() < deadline) await Bun.sleep(20);
  return { head: text.slice(0, text.indexOf("\r\n\r\n")), serverClosed, socket };
}

describe("event streams over HTTP/2", () => {
  test(`${STREAMS_ON_ONE_CONNECTION} streams on one connection: each gets its snapshot and every event exactly once`, async () => {
    const { match, kickoff } = await startedMatch(h2Node, "h2many");
    const session = await openH2Session(https(h2Node), ca);
    try {
      expect(session.alpnProtocol).toBe("h2");
      const openBefore = await metric(h2Node, "touchline_streams_open");
      const streams = Array.from({ length: STREAMS_ON_ONE_CONNECTION }, () => openH2Sse(session, `/matches/${match}/events`));
      await Promise.all(streams.map((s) => s.until(() => s.events.length >= 1, 10_000, "the snapshot")));
      expect(await metric(h2Node, "touchline_streams_open")).toBe(openBefore + STREAMS_ON_ONE_CONNECTION);
      for (const s of streams) {
        expect(s.status).toBe(200);
        expect(s.headers!["content-type"]).toBe("text/event-stream; charset=utf-8");
        expect(s.headers!["cache-control"]).toBe("no-cache, no-transform");
        // Connection-specific headers are forbidden in HTTP/2 (RFC 9113 8.2.2): Bun drops the streams' Connection: close.
        expect(s.headers!.connection).toBeUndefined();
        expect(s.retries).toHaveLength(1);
      }

      // Four publishers at once: the ids in sequence order are what every stream must show.
      const published: string[] = [];
      await Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          for (let i = 0; i < 10; i++) published.push(await publishOk(h2Node, match, { type: "goal", data: { w, i } }));
        }),
      );
      const expected = sortedBySeq(published);
      await Promise.all(streams.map((s) => s.until(() => s.events.length >= 1 + expected.length, 10_000, "every event")));
      await Bun.sleep(200); // room for a duplicate to show
      for (const s of streams) expectExact(s, kickoff, expected, "goal");

      // A browser closing some EventSources resets those streams (RST_STREAM): the node frees them, the
      // connection and the other streams go on.
      for (const s of streams.slice(0, 10)) s.cancel();
      await waitFor(async () => (await metric(h2Node, "touchline_streams_open")) === openBefore + 10, 5000, "cancelled streams freed");
      const after = await publishOk(h2Node, match, { type: "goal", data: { after: true } });
      for (const s of streams.slice(10)) await s.until(() => s.events.at(-1)?.lastEventId === after, 5000, "the event after the cancels");
      for (const s of streams.slice(10)) expect(s.closed).toBe(false);
      expect(session.closed || session.destroyed).toBe(false);
    } finally {
      session.destroy();
    }
    // The whole connection gone: every stream on it is freed.
    await waitFor(async () => (await metric(h2Node, "touchline_streams_open")) === 0, 5000, "all streams freed after the connection closed");
  });

  test("flow control: 150 times the 64 KiB window through one connection, nothing lost or repeated", async () => {
    const { match, kickoff } = await startedMatch(h2Node, "h2flow");
    const session = await openH2Session(https(h2Node), ca);
    try {
      expect(session.remoteSettings.initialWindowSize).toBeLessThanOrEqual(65_536);
      const streams = Array.from({ length: STREAMS_ON_ONE_CONNECTION }, () => openH2Sse(session, `/matches/${match}/events`));
      await Promise.all(streams.map((s) => s.until(() => s.events.length >= 1, 10_000, "the snapshot")));
      const pad = "x".repeat(40_000);
      const published: string[] = [];
      for (let i = 0; i < 14; i++) published.push(await publishOk(h2Node, match, { type: "big", data: { i, pad } }));
      await Promise.all(streams.map((s) => s.until(() => s.events.length >= 1 + published.length, 20_000, "every large event")));
      await Bun.sleep(200);
      for (const s of streams) {
        expectExact(s, kickoff, published, "big");
        expect(s.events.slice(1).every((e) => e.data.includes(pad))).toBe(true);
      }
      const through = streams.reduce((sum, s) => sum + s.bytes, 0);
      expect(through).toBeGreaterThan(150 * 65_536);
    } finally {
      session.destroy();
    }
  });

  test("a stream its client stops reading is cut as slow and freed at once; the other streams on its connection get everything", async () => {
    const { match, kickoff } = await startedMatch(h2Node, "h2slow");
    // Frames by hand: the client returns flow-control credit for every stream but one, so that stream's
    // window stays at zero (a client that stopped reading it) while the connection's stays open.
    const conn = await RawH2Connection.connect({ port: h2Node.port, ca });
    try {
      const openBefore = await metric(h2Node, "touchline_streams_open");
      const streams = Array.from({ length: 10 }, () => new FrameSse(conn, `/matches/${match}/events`));
      await waitFor(async () => streams.every((s) => s.events.length >= 1), 10_000, "the snapshots");
      expect(streams.every((s) => s.ok)).toBe(true);
      const cutBefore = await metric(h2Node, "touchline_slow_clients_cut_total");
      const [stalled, ...readers] = streams as [FrameSse, ...FrameSse[]];
      conn.setReading(stalled.id, false);
      const pad = "y".repeat(40_000);
      const published: string[] = [];
      // Past four times CLIENT_BUFFER_BYTES (the cut at once) plus the stream's 64 KiB window, at a pace
      // the readers keep up with (they are never over the buffer for SLOW_CLIENT_GRACE).
      const count = Math.ceil((CLIENT_BUFFER_BYTES * 4 + 65_536) / pad.length) + 10;
      for (let i = 0; i < count; i++) {
        published.push(await publishOk(h2Node, match, { type: "big", data: { i, pad } }));
        await Bun.sleep(10);
      }
      await waitFor(async () => (await metric(h2Node, "touchline_slow_clients_cut_total")) === cutBefore + 1, 10_000, "the stalled stream cut");
      await waitFor(async () => (await metric(h2Node, "touchline_streams_open")) === openBefore + readers.length, 5000, "the cut stream freed");
      await waitFor(async () => readers.every((s) => s.events.length >= 1 + published.length), 20_000, "every event on the readers");
      await Bun.sleep(200);
      for (const s of readers) {
        expect(s.events[0]!.lastEventId).toBe(kickoff);
        expect(s.events.slice(1).map((e) => e.lastEventId)).toEqual(published);
        expect(s.reset).toBeUndefined();
      }
      expect(stalled.events.length).toBeLessThan(1 + published.length);
      // Bun sends the stream's RST_STREAM behind the bytes it had framed for it, once the window reopens.
      conn.setReading(stalled.id, true);
      await waitFor(async () => stalled.reset !== undefined, 5000, "the reset of the cut stream");
      expect(conn.goaway).toBeUndefined();
      expect(conn.closed).toBe(false);
    } finally {
      conn.close();
    }
  });

  test("curl --http2 sees HTTP/2 200 and the events as they come", async () => {
    const { match, kickoff } = await startedMatch(h2Node, "h2curl");
    const curl = Bun.spawn(["curl", "--http2", "-k", "-N", "-i", "-sS", "--max-time", "20", `${https(h2Node)}/matches/${match}/events`], {
      stdout: "pipe",
      stderr: "pipe",
    });
    let out = "";
    const read = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of curl.stdout as ReadableStream<Uint8Array>) out += dec.decode(chunk, { stream: true });
    })();
    try {
      await waitFor(async () => out.includes(`id: ${kickoff}\nevent: snapshot`), 10_000, `curl's snapshot\n${out}`);
      const goal = await publishOk(h2Node, match, { type: "goal" });
      await waitFor(async () => out.includes(`id: ${goal}\nevent: goal`), 10_000, `curl's goal\n${out}`);
      expect(out.split("\r\n")[0]).toBe("HTTP/2 200 ");
      expect(out.toLowerCase()).toContain("content-type: text/event-stream");
      expect(out.toLowerCase()).not.toContain("connection:");
    } finally {
      curl.kill();
      await curl.exited;
      await read;
    }
  });

  test("HTTP/1.1 beside it on the same port: the stream answer still says Connection: close, and HEAD closes the connection", async () => {
    const match = uniqueMatch("h2h1");
    const stream = await http1Request(h2Node, `GET /matches/${match}/events HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\n\r\n`, 0);
    expect(stream.head).toStartWith("HTTP/1.1 200");
    expect(stream.head.toLowerCase()).toContain("connection: close");
    stream.socket.destroy();
    const head = await http1Request(h2Node, `HEAD /matches/${match}/events HTTP/1.1\r\nhost: localhost\r\n\r\n`);
    expect(head.head.toLowerCase()).toContain("connection: close");
    expect(head.serverClosed).toBe(true);

    // The same answer on HTTP/2 ends its stream only: the connection carries the next request.
    const session: ClientHttp2Session = await openH2Session(https(h2Node), ca);
    try {
      const res = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const r = session.request({ ":method": "HEAD", ":path": `/matches/${match}/events` });
        r.on("response", (h) => resolve(h as Record<string, unknown>)).on("error", reject);
        r.end();
      });
      expect(res[":status"]).toBe(200);
      expect(res.connection).toBeUndefined();
      const health = await new Promise<number>((resolve, reject) => {
        const r = session.request({ ":path": "/healthz" });
        r.on("response", (h) => resolve(Number(h[":status"]))).on("error", reject);
        r.resume();
      });
      expect(health).toBe(200);
    } finally {
      session.destroy();
    }
  });

  test("a stream refused by a full node ends, but its HTTP/2 connection stays open: the reconnect comes back to the same node", async () => {
    // On HTTP/1.1 the refusal's Connection: close ends the TCP connection, so EventSource's reconnect goes
    // back through the balancer to whichever node it picks. Bun drops the header on HTTP/2 and sends no
    // GOAWAY: the reconnect rides the same connection to the same full node. This is why HTTP2 is off by default.
    const full = await startTlsNode({ HTTP2: "true", MAX_CONNECTIONS: "2" });
    const session = await openH2Session(https(full), ca);
    let goaway = false;
    session.on("goaway", () => void (goaway = true));
    try {
      const { match } = await startedMatch(full, "h2full");
      const holders = [openH2Sse(session, `/matches/${match}/events`), openH2Sse(session, `/matches/${match}/events`)];
      await Promise.all(holders.map((s) => s.until(() => s.events.length >= 1, 10_000, "the snapshot")));
      for (let attempt = 0; attempt < 3; attempt++) {
        const refused = openH2Sse(session, `/matches/${match}/events`);
        await refused.until(() => refused.ended, 10_000, "the refusal to end");
        expect(refused.status).toBe(200);
        expect(refused.events.map((e) => e.type)).toEqual(["touchline.refused"]);
        expect(refused.headers!.connection).toBeUndefined();
      }
      await Bun.sleep(200);
      expect(goaway).toBe(false);
      expect(session.closed || session.destroyed).toBe(false);
      for (const s of holders) expect(s.closed).toBe(false);
    } finally {
      session.destroy();
      await full.kill();
    }
  });

  test("ALPN: h2 with HTTP2=true, http/1.1 with HTTP2=false", async () => {
    expect(await negotiated(h2Node)).toBe("h2");
    // Without HTTP/2 Bun selects no protocol at all (no ALPN answer): every client then speaks HTTP/1.1.
    expect(["http/1.1", false]).toContain(await negotiated(h1Node));
    const curl = Bun.spawnSync(["curl", "--http2", "-k", "-sS", "-i", "--max-time", "10", `${https(h1Node)}/healthz`]);
    expect(curl.stdout.toString().split("\r\n")[0]).toStartWith("HTTP/1.1 200");
  });
});

describe("the HTTP2 setting", () => {
  test("off by default; true turns it on with TLS; true without TLS or garbage is refused", () => {
    expect(http2Setting(undefined, true)).toBe(false);
    expect(http2Setting(undefined, false)).toBe(false);
    expect(http2Setting("", true)).toBe(false);
    expect(http2Setting("1", true)).toBe(true);
    expect(http2Setting("false", true)).toBe(false);
    expect(http2Setting("off", true)).toBe(false);
    expect(http2Setting("false", false)).toBe(false);
    expect(http2Setting("true", true)).toBe(true);
    expect(() => http2Setting("true", false)).toThrow(ConfigError);
    expect(() => http2Setting("maybe", true)).toThrow("invalid HTTP2");
  });

  test("a node asked for HTTP2 without TLS stops at start-up naming the variable", async () => {
    const n = await startNode({ natsUrl: nats.url, ready: false, env: { HTTP2: "true" } });
    expect(await n.proc.exited).toBe(2);
    expect(n.output()).toContain("invalid HTTP2");
  });
});
