/**
 * Bad input gets the contract's JSON error with the right status, never crashes the node, stores
 * nothing, and leaks no subscriber: afterwards the node is ready and no stream is left open.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { waitFor } from "../helpers/cluster.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse, sendRaw, untilHead, type SseConnection } from "../helpers/sse.ts";
import { getJson, metricValue, publishOk, readJson, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

/** The contract's default body limit (MAX_BODY_BYTES unset). */
const MAX_BODY_BYTES = 65_536;

const { node } = useNode();
/** Every rejected publish goes to this match: it must end up with no events at all. */
const victim = uniqueMatch("bad");

function expectJsonError(answer: { status: number; headers: Headers; json: Record<string, unknown> }, status: number, code?: string): void {
  expect({ status: answer.status, error: answer.json.error }).toEqual({ status, error: code ?? answer.json.error });
  expect(answer.headers.get("content-type")).toStartWith("application/json");
  expect(Object.keys(answer.json).sort()).toEqual(["error", "message"]);
  expect(typeof answer.json.error).toBe("string");
  expect(typeof answer.json.message).toBe("string");
  expect((answer.json.message as string).length).toBeGreaterThan(0);
}

async function post(path: string, body: BodyInit | null, headers: Record<string, string> = { "content-type": "application/json" }) {
  return readJson(await fetch(`${node.url}${path}`, { method: "POST", headers, body }));
}

/** A raw chunked POST of `bytes` bytes of (valid-looking) JSON, with no Content-Length. */
async function postChunked(match: string, bytes: number): Promise<SseConnection> {
  const filler = "x".repeat(bytes - 30);
  const body = Buffer.from(JSON.stringify({ type: "goal", data: filler }));
  const CHUNK = 8192;
  const parts: (string | Uint8Array)[] = [
    `POST /matches/${match}/events HTTP/1.1\r\nHost: ${new URL(node.url).host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
  ];
  for (let off = 0; off < body.length; off += CHUNK) {
    const chunk = body.subarray(off, off + CHUNK);
    parts.push(`${chunk.length.toString(16)}\r\n`, chunk, "\r\n");
  }
  parts.push("0\r\n\r\n");
  return sendRaw(node.url, parts);
}

describe("publishing bad input", () => {
  test("malformed JSON is 400 invalid_json", async () => {
    for (const body of ['{"type": "goal"', "not json", "", '{"type":"goal",}']) {
      expectJsonError(await post(`/matches/${victim}/events`, body), 400, "invalid_json");
    }
  });

  test("a wrong or missing content type is 415", async () => {
    const body = JSON.stringify({ type: "goal" });
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp"]) {
      expectJsonError(await post(`/matches/${victim}/events`, body, { "content-type": type }), 415);
    }
    const noType = await readJson(await fetch(`${node.url}/matches/${victim}/events`, { method: "POST", body: new Blob([body]) }));
    expectJsonError(noType, 415);
  });

  test("a JSON content type with parameters is accepted", async () => {
    const match = uniqueMatch("ctype");
    const answer = await post(`/matches/${match}/events`, JSON.stringify({ type: "goal" }), { "content-type": "application/json; charset=utf-8" });
    expect(answer.status).toBe(201);
  });

  test("a body over the limit with a Content-Length is 413", async () => {
    const body = JSON.stringify({ type: "goal", data: "x".repeat(MAX_BODY_BYTES) });
    expectJsonError(await post(`/matches/${victim}/events`, body), 413, "too_large");
  });

  test("a body just under the limit is accepted", async () => {
    const match = uniqueMatch("big");
    const body = JSON.stringify({ type: "goal", data: "x".repeat(MAX_BODY_BYTES - 100) });
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect((await post(`/matches/${match}/events`, body)).status).toBe(201);
  });

  for (const size of [MAX_BODY_BYTES + 1024, 1_048_576]) {
    test(`a chunked body of ${size} bytes without a length is 413`, async () => {
      const conn = await postChunked(victim, size);
      await untilHead(conn, "chunked POST");
      await conn.until(() => conn.isEnded, 5000, "the whole error body");
      expect(conn.status).toBe(413);
      expect(conn.headers.get("content-type") ?? "").toStartWith("application/json");
      const body = JSON.parse(conn.body) as Record<string, unknown>;
      expect(body.error).toBe("too_large");
      expect(typeof body.message).toBe("string");
    });
  }

  test("a ReadableStream body (sent chunked by fetch) over the limit is 413", async () => {
    const total = MAX_BODY_BYTES * 2;
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"type":"goal","data":"'));
        if (sent >= total) {
          controller.enqueue(new TextEncoder().encode('"}'));
          controller.close();
          return;
        }
        controller.enqueue(new Uint8Array(8192).fill(0x78));
        sent += 8192;
      },
    });
    const res = await fetch(`${node.url}/matches/${victim}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: stream });
    expectJsonError(await readJson(res), 413, "too_large");
  });

  test("an invalid match id is 400", async () => {
    for (const match of ["bad%20id", "a.b", "x".repeat(65), "%C3%A9t%C3%A9", "a%2Fb"]) {
      expectJsonError(await post(`/matches/${match}/events`, JSON.stringify({ type: "goal" })), 400);
    }
  });

  test("an invalid event type is 400", async () => {
    for (const body of [{}, { type: "" }, { type: "1goal" }, { type: "a b" }, { type: "x".repeat(65) }, { type: 7 }, { type: null }, { type: "goal\n" }]) {
      expectJsonError(await post(`/matches/${victim}/events`, JSON.stringify(body)), 400);
    }
  });

  test("reserved types (snapshot, touchline.*) are 400", async () => {
    for (const type of ["snapshot", "touchline.x", "touchline.reset"]) {
      expectJsonError(await post(`/matches/${victim}/events`, JSON.stringify({ type })), 400);
    }
  });

  test("a body that is not an object, a bad key or a non-object state is 400", async () => {
    for (const body of [
      [],
      "goal",
      42,
      null,
      { type: "goal", key: "" },
      { type: "goal", key: 5 },
      { type: "goal", state: [1] },
      { type: "goal", state: "x" },
    ]) {
      expectJsonError(await post(`/matches/${victim}/events`, JSON.stringify(body)), 400);
    }
  });

  test("nothing rejected was stored", async () => {
    expectJsonError(await getJson(`${node.url}/matches/${victim}`), 404, "not_found");
  });
});

describe("reading bad input", () => {
  test("an invalid match id on a stream or a read is 400, not a stream", async () => {
    for (const path of ["/matches/bad%20id/events", "/matches/a.b/events", `/matches/${"x".repeat(65)}/events`, "/matches/a.b", "/matches/a.b/poll"]) {
      const res = await fetch(`${node.url}${path}`, { headers: { accept: "text/event-stream" } });
      expectJsonError(await readJson(res), 400);
    }
  });

  test("a wrong method is 405 with Allow", async () => {
    const cases: [string, string, string[]][] = [
      ["DELETE", "/matches/m1/events", ["GET", "POST"]],
      ["PUT", "/matches/m1/events", ["GET", "POST"]],
      ["POST", "/matches/m1", ["GET"]],
      ["DELETE", "/matches", ["GET"]],
      // POST /events is batch publishing; other methods are not.
      ["DELETE", "/events?match=a", ["GET", "POST"]],
      ["PUT", "/events", ["GET", "POST"]],
      ["POST", "/metrics", ["GET"]],
    ];
    for (const [method, path, allowed] of cases) {
      const answer = await readJson(
        await fetch(`${node.url}${path}`, { method, headers: { "content-type": "application/json" }, body: method === "DELETE" ? null : "{}" }),
      );
      expectJsonError(answer, 405, "method_not_allowed");
      const allow = (answer.headers.get("allow") ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      expect({ method, path, allow: allow.sort() }).toEqual({ method, path, allow: allowed.sort() });
    }
  });

  test("an unknown path is 404", async () => {
    for (const path of ["/nope", "/matches/a/b/c", "/events/x", "/api/matches"]) {
      expectJsonError(await getJson(`${node.url}${path}`), 404, "not_found");
    }
  });

  test("garbage on the socket does not hurt the node", async () => {
    for (const garbage of ["HELLO\r\n\r\n", "GET\r\n\r\n", "\x00\x01\x02\x03\r\n\r\n", `GET /${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`]) {
      const conn = await sendRaw(node.url, [garbage]);
      await conn.until(() => conn.isEnded || conn.status > 0, 3000, "an answer or a close").catch(() => {});
      await conn.close();
    }
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
  });
});

describe("no leaks", () => {
  test("after streams with good, bad and abrupt endings the node is ready and touchline_streams_open is 0", async () => {
    const match = uniqueMatch("leak");
    await publishOk(node.url, match, { type: "kickoff" });
    const baseline = await metricValue(node.url, "touchline_streams_open");
    expect(baseline).toBe(0);

    const streams = await Promise.all([
      openSse(`${node.url}/matches/${match}/events`),
      openSse(`${node.url}/matches/${match}/events`, { headers: { "last-event-id": "garbage" } }),
      openSse(`${node.url}/matches/${match}/events?lastEventId=-1`),
      openSse(`${node.url}/matches/${match}/events`, { headers: { "last-event-id": "99999999" } }),
      openSse(`${node.url}/events?match=${match}&match=${uniqueMatch("leak2")}`, { headers: { "last-event-id": "nonsense" } }),
      openSse(`${node.url}/events?match=${match}`, { headers: { "last-event-id": `${match}:1` } }),
    ]);
    await Promise.all(streams.map((s) => s.untilEvents(1)));
    expect(await metricValue(node.url, "touchline_streams_open")).toBe(streams.length);

    // Half leave politely (FIN), half vanish (the socket is destroyed without a goodbye).
    for (const [i, s] of streams.entries()) {
      if (i % 2 === 0) await s.close();
      else s.destroy();
    }
    // A request that is refused never opens a stream either.
    await fetch(`${node.url}/matches/bad%20id/events`);
    await fetch(`${node.url}/events?match=${"x".repeat(65)}`);

    await waitFor(async () => (await metricValue(node.url, "touchline_streams_open")) === 0, 5000, "streams_open back to 0");
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
    // And the actors let go of those subscribers: a new event reaches a new stream only.
    const s = await openSse(`${node.url}/matches/${match}/events`);
    await s.untilEvents(1);
    await publishOk(node.url, match, { type: "goal" });
    await s.untilEvents(2);
    await s.close();
    await waitFor(async () => (await metricValue(node.url, "touchline_streams_open")) === 0, 5000, "streams_open back to 0");
  });
});
