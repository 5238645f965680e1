/**
 * The L4 balancer against real sockets: small Bun.serve backends behind it, plain TCP clients in front.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Server, Socket } from "bun";
import { startTcpBalancer, type TcpBalancer } from "../../cluster/tcpBalancer.ts";
import { freePort } from "../helpers/cluster.ts";

const BIG_BODY_BYTES = 24 * 1024 * 1024;
const STREAM_CHUNK_BYTES = 256 * 1024;
const SLOW_READER_PAUSE_MS = 300;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Deterministic bytes, so both ends can compute the same body without sharing it. */
function pattern(offset: number, length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const n = offset + i;
    out[i] = (n * 31 + (n >>> 9) * 7) & 0xff;
  }
  return out;
}

function sha(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

function backend(name: string): Server<undefined> {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/big") {
        let sent = 0;
        return new Response(
          new ReadableStream({
            type: "bytes",
            pull(controller) {
              const n = Math.min(STREAM_CHUNK_BYTES, BIG_BODY_BYTES - sent);
              controller.enqueue(pattern(sent, n));
              sent += n;
              if (sent >= BIG_BODY_BYTES) controller.close();
            },
          }),
          { headers: { "content-type": "application/octet-stream" } },
        );
      }
      if (url.pathname === "/upload") {
        const body = new Uint8Array(await req.arrayBuffer());
        return Response.json({ name, bytes: body.byteLength, sha: sha(body) });
      }
      return new Response(name);
    },
  });
  cleanups.push(() => server.stop(true));
  return server;
}

function balancerOver(ports: () => number[]): TcpBalancer {
  const lb = startTcpBalancer({ port: 0, hostname: "127.0.0.1", backends: () => ports().map((port) => ({ host: "127.0.0.1", port })) });
  cleanups.push(() => lb.stop());
  return lb;
}

/** One HTTP/1.1 request on its own TCP connection, read to the end (Connection: close). */
async function rawRequest(port: number, request: string, opts: { pauseAfterFirstChunkMs?: number } = {}): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let paused = false;
  return await new Promise<Uint8Array>((resolve, reject) => {
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        open(s) {
          s.write(request);
        },
        data(s, chunk) {
          chunks.push(chunk.slice());
          if (opts.pauseAfterFirstChunkMs && !paused) {
            paused = true;
            s.pause();
            setTimeout(() => s.resume(), opts.pauseAfterFirstChunkMs);
          }
        },
        close() {
          resolve(Buffer.concat(chunks));
        },
        error(_s, err) {
          reject(err);
        },
      },
    }).catch(reject);
  });
}

function splitResponse(raw: Uint8Array): { head: string; body: Uint8Array } {
  const buf = Buffer.from(raw);
  const at = buf.indexOf("\r\n\r\n");
  return { head: buf.subarray(0, at).toString(), body: buf.subarray(at + 4) };
}

/** Decodes a chunked transfer-encoded body. */
function dechunk(body: Uint8Array): Uint8Array {
  const buf = Buffer.from(body);
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf("\r\n", at);
    const size = parseInt(buf.subarray(at, eol).toString(), 16);
    if (size === 0) break;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

async function bodyOf(port: number, path: string, opts?: { pauseAfterFirstChunkMs?: number }): Promise<{ head: string; body: Uint8Array }> {
  const { head, body } = splitResponse(await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, opts));
  return { head, body: /transfer-encoding: chunked/i.test(head) ? dechunk(body) : body };
}

describe("tcpBalancer", () => {
  test("spreads connections round-robin over the backends", async () => {
    const a = backend("a");
    const b = backend("b");
    const lb = balancerOver(() => [a.port!, b.port!]);
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) seen.push(Buffer.from((await bodyOf(lb.port, "/")).body).toString());
    expect(seen.filter((n) => n === "a").length).toBe(5);
    expect(seen.filter((n) => n === "b").length).toBe(5);
    // Strict alternation: one connection each in turn.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
  });

  test("skips a backend that refuses connections", async () => {
    const a = backend("a");
    const deadPort = await freePort();
    const lb = balancerOver(() => [deadPort, a.port!]);
    for (let i = 0; i < 6; i++) expect(Buffer.from((await bodyOf(lb.port, "/")).body).toString()).toBe("a");
  });

  test("fails over when a backend stops, and uses it again when it is back", async () => {
    const a = backend("a");
    let b = backend("b");
    const bPort = b.port!;
    const lb = balancerOver(() => [a.port!, bPort]);
    b.stop(true);
    const during = await Promise.all(Array.from({ length: 6 }, async () => Buffer.from((await bodyOf(lb.port, "/")).body).toString()));
    expect(during).toEqual(["a", "a", "a", "a", "a", "a"]);
    b = Bun.serve({ port: bPort, hostname: "127.0.0.1", fetch: () => new Response("b2") });
    cleanups.push(() => b.stop(true));
    const after: string[] = [];
    for (let i = 0; i < 4; i++) after.push(Buffer.from((await bodyOf(lb.port, "/")).body).toString());
    expect(after.sort()).toEqual(["a", "a", "b2", "b2"]);
  });

  test("closes the client when every backend refuses", async () => {
    const lb = balancerOver(() => []);
    const raw = await rawRequest(lb.port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect(raw.byteLength).toBe(0);
  });

  test("a large streamed body passes intact to a fast reader and to a slow one", async () => {
    const a = backend("a");
    const lb = balancerOver(() => [a.port!]);
    const expected = sha(pattern(0, BIG_BODY_BYTES));
    const fast = await bodyOf(lb.port, "/big");
    expect(fast.head).toStartWith("HTTP/1.1 200");
    expect(fast.body.byteLength).toBe(BIG_BODY_BYTES);
    expect(sha(fast.body)).toBe(expected);
    // The slow reader stops reading for a while: the balancer's writes to it come back short and it
    // must queue, pause the backend and resume on drain without losing or reordering a byte.
    const slow = await bodyOf(lb.port, "/big", { pauseAfterFirstChunkMs: SLOW_READER_PAUSE_MS });
    expect(slow.body.byteLength).toBe(BIG_BODY_BYTES);
    expect(sha(slow.body)).toBe(expected);
  });

  test("a reader that stops reading stops the backend too (bounded buffering)", async () => {
    // A backend that writes as fast as its socket takes bytes, counting what it got rid of.
    let accepted = 0;
    const block = new Uint8Array(STREAM_CHUNK_BYTES);
    const pump = (s: Socket<undefined>): void => {
      for (;;) {
        const n = s.write(block);
        if (n > 0) accepted += n;
        if (n < block.byteLength) return; // resumes on drain
      }
    };
    const firehose = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: pump, drain: pump, data() {} } });
    cleanups.push(() => firehose.stop(true));
    const lb = balancerOver(() => [firehose.port]);
    const client = await Bun.connect({ hostname: "127.0.0.1", port: lb.port, socket: { data() {} } });
    cleanups.push(() => client.terminate());
    client.pause();
    await Bun.sleep(SLOW_READER_PAUSE_MS * 2);
    const whilePaused = accepted;
    // Kernel buffers on both hops plus one queued chunk; without the pause this runs to gigabytes.
    expect(whilePaused).toBeLessThan(BIG_BODY_BYTES);
    client.resume();
    await Bun.sleep(SLOW_READER_PAUSE_MS);
    expect(accepted).toBeGreaterThan(whilePaused);
  });

  test("a large upload passes intact to the backend", async () => {
    const a = backend("a");
    const lb = balancerOver(() => [a.port!]);
    const body = pattern(7, BIG_BODY_BYTES / 2);
    const res = await fetch(`http://127.0.0.1:${lb.port}/upload`, { method: "POST", body });
    expect(await res.json()).toEqual({ name: "a", bytes: body.byteLength, sha: sha(body) });
  });

  test("closing either side closes the other", async () => {
    let backendSocket: Socket<undefined> | undefined;
    let backendClosed = Promise.withResolvers<void>();
    const echo = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          backendSocket = s;
        },
        data(s, d) {
          s.write(d);
        },
        close() {
          backendClosed.resolve();
        },
      },
    });
    cleanups.push(() => echo.stop(true));
    const lb = balancerOver(() => [echo.port]);

    // Client closes: the backend connection goes too.
    const echoed = Promise.withResolvers<string>();
    const client = await Bun.connect({
      hostname: "127.0.0.1",
      port: lb.port,
      socket: { data: (_s, d) => echoed.resolve(Buffer.from(d).toString()) },
    });
    client.write("hello");
    expect(await echoed.promise).toBe("hello");
    client.end();
    await backendClosed.promise;

    // Backend closes: the client connection goes too.
    backendClosed = Promise.withResolvers<void>();
    const clientClosed = Promise.withResolvers<void>();
    const opened = Promise.withResolvers<void>();
    const client2 = await Bun.connect({
      hostname: "127.0.0.1",
      port: lb.port,
      socket: { data: () => opened.resolve(), close: () => clientClosed.resolve() },
    });
    client2.write("x");
    await opened.promise;
    backendSocket!.end();
    await clientClosed.promise;
  });
});
