/**
 * PROXY_PROTOCOL against a real node: behind an L4 balancer that sends the PROXY header, per-address
 * limits count each real client (not the balancer), a client cannot name itself by header (untrusted
 * peer) or by X-Forwarded-For, broken or late headers are refused and counted, streams flow through
 * the front, backpressure crosses it (a client that stops reading is still cut as slow), and a real
 * haproxy with `send-proxy-v2` and the repository's health check in front of the node is understood.
 * TLS behind the header: test/security/tls.test.ts.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, startNats, startNode, waitFor, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import type { SseConnection } from "../helpers/sse.ts";
import { metricValue, publishConcurrently, publishOk, rssBytes, uniqueMatch, untilLatest } from "../integration/touchlineApi.ts";
import { openSseFrom, requestFrom } from "./fromAddress.ts";
import { expectAdmitted, expectStreamRefusal } from "../helpers/refusal.ts";
import { streamIdleSeconds } from "../../src/http/streams.ts";

setDefaultTimeout(30_000);

/** The balancer's address: the only peer allowed to send the header. The test's own sockets come from it. */
const BALANCER = "127.0.0.1";
const HEARTBEAT_MS = 200;
/** The HTTP idle timeout at that heartbeat: how long a silent connection is kept. */
const IDLE_MS = streamIdleSeconds(HEARTBEAT_MS) * 1000;

const CLIENT_BUFFER_BYTES = 65_536;
/** About 1 KB per event on the wire, as in test/integration/slowClient.test.ts. */
const COMMENT = "A line of commentary, repeated so that each event weighs about one kilobyte on the wire. ".repeat(11);
/**
 * 30 MB per stream: past the kernel buffers of both hops (client to front, front to the HTTP server on
 * loopback, up to 4 MB send plus receive buffer each) and the cap, so the cut proves backpressure
 * crossed the front rather than the front queueing without bound.
 */
const SLOW_EVENTS = 30_000;
const PUBLISH_CONCURRENCY = 16;
const RSS_BOUND_BYTES = 300 * 1024 * 1024;

let nats: NatsFixture;
let node: NodeFixture;
const open: SseConnection[] = [];

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({
    natsUrl: nats.url,
    env: {
      PROXY_PROTOCOL: "true",
      TRUST_PROXY: BALANCER,
      // Every address counts, loopback included, with one stream each.
      LIMITS_EXEMPT: "none",
      MAX_STREAMS_PER_ADDRESS: "1",
      STREAM_RATE_PER_ADDRESS: "0",
      // The test publishes from loopback, counted like any client here.
      PUBLISH_RATE: "0",
      HEARTBEAT_MS: String(HEARTBEAT_MS),
      CLIENT_BUFFER_BYTES: String(CLIENT_BUFFER_BYTES),
    },
  });
});

afterAll(async () => {
  for (const s of open) await s.close();
  await node?.kill();
  await nats?.stop();
});

const v1 = (client: string, port = 40000) => new TextEncoder().encode(`PROXY TCP4 ${client} 127.0.0.1 ${port} 443\r\n`);

/** A v2 PROXY header for an IPv4 TCP client. */
function v2(client: string, port = 40000): Uint8Array {
  const src = client.split(".").map(Number);
  const body = [...src, 127, 0, 0, 1, port >> 8, port & 0xff, 0x01, 0xbb];
  return Uint8Array.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, body.length, ...body]);
}

async function streamAs(preamble: Uint8Array | undefined, match: string, from = BALANCER, headers: Record<string, string> = {}): Promise<SseConnection> {
  const conn = await requestFrom(from, `${node.url}/matches/${match}/events`, {
    headers: { accept: "text/event-stream", ...headers },
    ...(preamble ? { preamble } : {}),
  });
  open.push(conn);
  return conn;
}

/** Sends `preamble` (and a request after it) and expects the connection closed with no HTTP answer. */
async function expectRefused(preamble: Uint8Array, from = BALANCER): Promise<void> {
  const conn = await requestFrom(from, `${node.url}/readyz`, { preamble, waitForHead: false });
  await conn.until(() => conn.isEnded, 5_000, "the connection to be closed");
  expect(conn.status).toBe(0);
}

describe("behind a balancer that sends the PROXY header", () => {
  test("each client the header names is counted as itself: one's cap leaves the other streaming (v1 and v2)", async () => {
    const match = uniqueMatch("pp");
    await publishOk(node.url, match, { type: "kickoff" });
    const first = await streamAs(v1("198.51.100.1"), match);
    expect(first.status).toBe(200);
    await first.until(() => first.snapshots.length === 1, 5_000, "snapshot");
    // A stream refused for the client's cap (MAX_STREAMS_PER_ADDRESS=1, Retry-After 5 s), in the SSE form.
    const again = await streamAs(v2("198.51.100.1"), match);
    const refusal = await expectStreamRefusal(again, { error: "rate_limited", retryAfterS: 5 });
    expect(refusal.message).toContain("open streams");
    const other = await streamAs(v2("198.51.100.2"), match);
    await expectAdmitted(other);
    // The header is not the balancer's: the balancer's own address holds nothing.
    const balancerItself = await streamAs(undefined, match);
    await expectAdmitted(balancerItself);
  });

  test("X-Forwarded-For behind the header is the client's own claim and is not read", async () => {
    const match = uniqueMatch("pp");
    await publishOk(node.url, match, { type: "kickoff" });
    await expectAdmitted(await streamAs(v1("198.51.100.3"), match));
    const spoofed = await streamAs(v1("198.51.100.3"), match, BALANCER, { "x-forwarded-for": "192.0.2.77" });
    await expectStreamRefusal(spoofed, { error: "rate_limited", retryAfterS: 5 });
  });

  test("live events pass through the front, and a client that leaves frees its slot (nothing leaks)", async () => {
    const match = uniqueMatch("pp");
    await publishOk(node.url, match, { type: "kickoff" });
    const baseline = await metricValue(node.url, "touchline_streams_open");
    const s = await streamAs(v1("198.51.100.4"), match);
    await s.until(() => s.snapshots.length === 1, 5_000, "snapshot");
    const id = await publishOk(node.url, match, { type: "goal", data: { by: "home" } });
    await s.until(() => s.matchEvents.some((e) => e.lastEventId === id), 5_000, "the goal");
    await s.close();
    await waitFor(async () => (await metricValue(node.url, "touchline_streams_open")) === baseline, 5_000, "the stream closed on the node");
    const back = await streamAs(v1("198.51.100.4"), match);
    await expectAdmitted(back);
  });

  test("a client behind the front that stops reading is cut as slow; the others get everything; memory stays bounded", async () => {
    const match = uniqueMatch("pp");
    await untilLatest(node.url, match, await publishOk(node.url, match, { type: "kickoff" }));
    const cutBefore = await metricValue(node.url, "touchline_slow_clients_cut_total");
    const openBefore = await metricValue(node.url, "touchline_streams_open");
    const reader = await streamAs(v1("198.51.100.30"), match);
    const slow = await streamAs(v1("198.51.100.31"), match);
    await Promise.all([reader, slow].map((s) => s.until(() => s.snapshots.length === 1, 5_000, "snapshot")));
    slow.pause();
    let peakRss = rssBytes(node.proc.pid);
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(node.proc.pid))), 100);
    let cut = false;
    let published = 0;
    try {
      while (!cut && published < SLOW_EVENTS) {
        await publishConcurrently(node.url, match, 1000, PUBLISH_CONCURRENCY, (i) => ({ type: "comment", data: { i, text: COMMENT } }));
        published += 1000;
        cut = (await metricValue(node.url, "touchline_slow_clients_cut_total")) > cutBefore;
      }
    } finally {
      clearInterval(sampler);
    }
    expect(cut).toBe(true);
    await reader.until(() => reader.matchEvents.length === published, 30_000, "every event on the reading stream");
    expect(reader.isEnded).toBe(false);
    // The cut stream is gone from the node while its client still is not reading: nothing waits on it.
    await waitFor(async () => (await metricValue(node.url, "touchline_streams_open")) === openBefore + 1, 5_000, "only the reader left open");
    slow.resume();
    await slow.until(() => slow.isEnded, 10_000, "the slow client to see its stream end");
    expect(slow.matchEvents.length).toBeLessThan(published);
    expect(peakRss).toBeLessThan(RSS_BOUND_BYTES);
    console.log(
      `proxy front, slow client: cut after ${published} events (~${published / 1000} MB each stream), it had taken ${slow.matchEvents.length}; node RSS peak ${(peakRss / 1e6).toFixed(0)} MB`,
    );
  }, 120_000);

  test("a header split into single bytes is read whole", async () => {
    const match = uniqueMatch("pp");
    await publishOk(node.url, match, { type: "kickoff" });
    const header = v1("198.51.100.5");
    const socket = net.connect({ host: "127.0.0.1", port: node.port, localAddress: BALANCER });
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.setNoDelay(true);
    let answer = "";
    socket.on("data", (b: Buffer) => (answer += b.toString("latin1")));
    for (const byte of header) {
      socket.write(Uint8Array.of(byte));
      await Bun.sleep(2);
    }
    socket.write(`GET /matches/${match}/events HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n`);
    await waitFor(async () => answer.includes("event: snapshot"), 5_000, "the snapshot");
    expect(answer).toStartWith("HTTP/1.1 200");
    // Counted as 198.51.100.5: its one slot is taken.
    await expectStreamRefusal(await streamAs(v1("198.51.100.5"), match), { error: "rate_limited", retryAfterS: 5 });
    socket.destroy();
  });

  test("without a header a connection is its own client (health checks, scrapes)", async () => {
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
    const res = await requestFrom("127.0.0.6", `${node.url}/healthz`, { headers: { connection: "close" } });
    await res.until(() => res.isEnded, 5_000, "the answer");
    expect(res.status).toBe(200);
  });
});

describe("refusals: closed before any request, counted by reason", () => {
  const refused = (reason: string) => metricValue(node.url, "touchline_proxy_refused_total", { reason });

  test("a header from a peer that is not a trusted balancer is a forgery", async () => {
    const before = await refused("untrusted_peer");
    await expectRefused(v1("198.51.100.9"), "127.0.0.7");
    await expectRefused(v2("198.51.100.9"), "127.0.0.7");
    expect(await refused("untrusted_peer")).toBe(before + 2);
  });

  test("a broken header", async () => {
    const before = await refused("bad_header");
    await expectRefused(new TextEncoder().encode("PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n"));
    await expectRefused(new TextEncoder().encode(`PROXY TCP4 ${"9".repeat(200)}`));
    const badVersion = v2("198.51.100.9");
    badVersion[12] = 0x31;
    await expectRefused(badVersion);
    expect(await refused("bad_header")).toBe(before + 3);
  });

  test(
    "a header that never completes is closed after the HTTP idle timeout",
    async () => {
      const before = await refused("header_timeout");
      const socket = net.connect({ host: "127.0.0.1", port: node.port, localAddress: BALANCER });
      let closedAt = 0;
      socket.on("close", () => (closedAt = Date.now()));
      socket.on("error", () => {});
      await new Promise<void>((resolve) => socket.once("connect", resolve));
      const started = Date.now();
      // The start of a v1 header, then silence: a slow-loris on the front.
      socket.write("PROXY TCP4 198.51");
      await waitFor(async () => closedAt > 0, IDLE_MS + 5_000, "the silent connection to be closed");
      expect(closedAt - started).toBeGreaterThanOrEqual(IDLE_MS - 500);
      expect(await refused("header_timeout")).toBeGreaterThanOrEqual(before + 1);
    },
    IDLE_MS * 3,
  );
});

describe.skipIf(!Bun.which("haproxy"))("a real haproxy with send-proxy-v2 in front", () => {
  let haproxy: Subprocess | undefined;
  let entryUrl = "";
  let dir = "";
  let refusedBefore = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "touchline-pp-"));
    const port = await freePort();
    const cfg = join(dir, "haproxy.cfg");
    await Bun.write(
      cfg,
      [
        "global",
        "  maxconn 1000",
        "defaults",
        "  mode tcp",
        "  timeout connect 5s",
        "  timeout client 1h",
        "  timeout server 1h",
        "frontend entry",
        `  bind 127.0.0.1:${port}`,
        "  default_backend nodes",
        "backend nodes",
        // The repository's health check (cluster/haproxy.cfg): haproxy sends it with the header too.
        "  option httpchk GET /readyz",
        "  http-check send ver HTTP/1.1 hdr Host touchline-lb",
        "  http-check expect status 200",
        `  server n1 127.0.0.1:${node.port} send-proxy-v2 check inter 200 fall 1 rise 1`,
        "",
      ].join("\n"),
    );
    refusedBefore = await metricValue(node.url, "touchline_proxy_refused_total");
    haproxy = Bun.spawn(["haproxy", "-db", "-f", cfg], { stdout: "ignore", stderr: "ignore" });
    entryUrl = `http://127.0.0.1:${port}`;
    // Served only once haproxy's check through the front found the node ready (a down server gets nothing).
    await waitFor(async () => (await fetch(`${entryUrl}/healthz`)).status === 200, 10_000, "haproxy");
  });

  afterAll(async () => {
    haproxy?.kill("SIGTERM");
    await haproxy?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  test("clients from two addresses through haproxy are two clients to the node", async () => {
    const match = uniqueMatch("pp");
    await publishOk(node.url, match, { type: "kickoff" });
    const url = `${entryUrl}/matches/${match}/events`;
    const a = await openSseFrom("127.0.0.3", url);
    open.push(a);
    await expectAdmitted(a);
    const aAgain = await openSseFrom("127.0.0.3", url);
    open.push(aAgain);
    await expectStreamRefusal(aAgain, { error: "rate_limited", retryAfterS: 5 });
    const b = await openSseFrom("127.0.0.4", url);
    open.push(b);
    await expectAdmitted(b);
    const id = await publishOk(node.url, match, { type: "goal" });
    await Promise.all([a, b].map((s) => s.until(() => s.matchEvents.some((e) => e.lastEventId === id), 5_000, "the goal through haproxy")));
    // Several health checks have run by now (every 200 ms, one failure marks the node down): none refused.
    await Bun.sleep(1000);
    expect(await metricValue(node.url, "touchline_proxy_refused_total")).toBe(refusedBefore);
    expect((await fetch(`${entryUrl}/healthz`)).status).toBe(200);
  });
});
