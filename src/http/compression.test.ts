/**
 * Answer compression (src/http/compression.ts) and the validators of cached reads (src/http/caching.ts),
 * on synthetic answers: what is compressed, what never is (event streams, small bodies, encoded or
 * empty answers), the coding chosen from Accept-Encoding, Vary, and If-None-Match.
 */
import { describe, expect, test } from "bun:test";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { COMPRESS_MIN_BYTES, addVary, compressAnswer, negotiateEncoding } from "./compression.ts";
import { cachedJson, etagOf, noneMatch } from "./caching.ts";
import { SSE_HEADERS } from "../sse/headers.ts";

const big = JSON.stringify({
  matches: Array.from({ length: 60 }, (_, i) => ({ match: `m${i}`, id: `${i}@abc`, state: { home: "Arsenal", away: "Chelsea" } })),
});
const get = (headers: Record<string, string> = {}) => new Request("http://n/matches", { headers });
const jsonAnswer = (body = big) => new Response(body, { headers: { "Content-Type": "application/json; charset=utf-8" } });

function decode(bytes: Uint8Array, coding: string | null): string {
  if (coding === "gzip") return gunzipSync(bytes).toString();
  if (coding === "br") return brotliDecompressSync(bytes).toString();
  return new TextDecoder().decode(bytes);
}

describe("negotiateEncoding", () => {
  test.each([
    [null, undefined],
    ["", undefined],
    ["identity", undefined],
    ["gzip", "gzip"],
    ["gzip, deflate, br", "br"],
    ["gzip, deflate, br, zstd", "br"],
    ["br;q=0.5, gzip", "gzip"],
    ["br;q=0, gzip;q=0", undefined],
    ["GZIP;Q=0.8", "gzip"],
    ["x-gzip", "gzip"],
    ["*", "br"],
    ["*;q=0.1, br;q=0", "gzip"],
    ["deflate", undefined],
    ["gzip;q=0.9, br ; q=0.9", "br"],
  ])("%p -> %p", (header, want) => {
    expect(negotiateEncoding(header)).toBe(want as ReturnType<typeof negotiateEncoding>);
  });

  test("a tie goes to the preferred coding (gzip for dynamic answers); a higher q wins over it", () => {
    expect(negotiateEncoding("gzip, deflate, br", "gzip")).toBe("gzip");
    expect(negotiateEncoding("br", "gzip")).toBe("br");
    expect(negotiateEncoding("gzip;q=0.5, br", "gzip")).toBe("br");
  });
});

describe("compressAnswer", () => {
  test.each([
    ["gzip", "gzip"],
    ["br", "br"],
    ["gzip, deflate, br", "gzip"],
  ])("a large JSON answer for %p is %s-encoded, with Vary, and decodes to the same JSON", async (accept, coding) => {
    const res = await compressAnswer(get({ "accept-encoding": accept }), jsonAnswer());
    expect(res.headers.get("content-encoding")).toBe(coding);
    expect(res.headers.get("vary")).toBe("Accept-Encoding");
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.byteLength).toBeLessThan(big.length / 4);
    expect(decode(bytes, coding)).toBe(big);
  });

  test("status and other headers are kept; a strong ETag turns weak", async () => {
    const res = await compressAnswer(
      get({ "accept-encoding": "gzip" }),
      new Response(big, { status: 201, headers: { "Content-Type": "application/json", ETag: '"x"', "Retry-After": "1", Vary: "Origin" } }),
    );
    expect(res.status).toBe(201);
    expect(res.headers.get("etag")).toBe('W/"x"');
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("vary")).toBe("Origin, Accept-Encoding");
  });

  test(`a body under ${COMPRESS_MIN_BYTES} bytes is sent as it is (but says Vary)`, async () => {
    const small = JSON.stringify({ ok: true, pad: "x".repeat(COMPRESS_MIN_BYTES - 40) });
    expect(small.length).toBeLessThan(COMPRESS_MIN_BYTES);
    const res = await compressAnswer(get({ "accept-encoding": "gzip, br" }), jsonAnswer(small));
    expect(res.headers.get("content-encoding")).toBeNull();
    expect(res.headers.get("vary")).toBe("Accept-Encoding");
    expect(await res.text()).toBe(small);
  });

  test("without Accept-Encoding the answer is untouched", async () => {
    const original = jsonAnswer();
    const res = await compressAnswer(get(), original);
    expect(res).toBe(original);
    expect(res.headers.get("content-encoding")).toBeNull();
  });

  test("an event stream is never compressed, nor read: the same Response object comes back", async () => {
    let pulled = 0;
    const body = new ReadableStream(
      {
        pull: (c) => {
          pulled++;
          c.enqueue(new TextEncoder().encode(`: ${"x".repeat(4096)}\n\n`));
        },
      },
      { highWaterMark: 0 },
    );
    const stream = new Response(body, { headers: SSE_HEADERS });
    const res = await compressAnswer(get({ "accept-encoding": "gzip, br" }), stream);
    expect(res).toBe(stream);
    expect(res.headers.get("content-encoding")).toBeNull();
    expect(res.headers.get("vary")).toBeNull();
    expect(pulled).toBe(0);
    await res.body!.cancel();
  });

  test("no body (204, 304), an encoded answer, an image, or a HEAD: untouched", async () => {
    const ae = { "accept-encoding": "gzip" };
    for (const original of [
      new Response(null, { status: 204 }),
      new Response(null, { status: 304, headers: { ETag: 'W/"a"' } }),
      new Response(big, { headers: { "Content-Type": "application/json", "Content-Encoding": "br" } }),
      new Response(big, { headers: { "Content-Type": "image/png" } }),
    ]) {
      expect(await compressAnswer(get(ae), original)).toBe(original);
    }
    const head = jsonAnswer();
    expect((await compressAnswer(new Request("http://n/matches", { method: "HEAD", headers: ae }), head)).headers.get("content-encoding")).toBeNull();
  });

  test("static files (html, js, css, svg) and metrics text are compressed; the page's file is encoded once", async () => {
    const js = `const rows = [];\n${"rows.push({ team: 'home', player: 'Saka', minute: 23 });\n".repeat(200)}`;
    const file = () => new Response(js, { headers: { "Content-Type": "text/javascript; charset=utf-8" } });
    const first = await compressAnswer(get({ "accept-encoding": "gzip, br" }), file());
    expect(first.headers.get("content-encoding")).toBe("br");
    const a = new Uint8Array(await first.arrayBuffer());
    const b = new Uint8Array(await (await compressAnswer(get({ "accept-encoding": "br" }), file())).arrayBuffer());
    expect(decode(a, "br")).toBe(js);
    expect(a).toEqual(b);
    for (const type of ["text/html; charset=utf-8", "text/css", "image/svg+xml", "text/plain; version=0.0.4; charset=utf-8"]) {
      const res = await compressAnswer(get({ "accept-encoding": "gzip" }), new Response(js, { headers: { "Content-Type": type } }));
      expect({ type, coding: res.headers.get("content-encoding") }).toEqual({ type, coding: "gzip" });
    }
  });
});

describe("cached reads", () => {
  const body = { matches: [{ match: "m1", id: "1@a", state: {} }], next: null };

  test("a 200 carries Cache-Control max-age, a weak ETag of the JSON, and Vary", async () => {
    const res = cachedJson(get(), body, 2);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=2");
    expect(res.headers.get("etag")).toBe(etagOf(JSON.stringify(body)));
    expect(res.headers.get("etag")).toStartWith('W/"');
    expect(res.headers.get("vary")).toBe("Accept-Encoding");
    expect(await res.json()).toEqual(body);
  });

  test("If-None-Match with the current ETag: 304 without a body, same validators", async () => {
    const etag = etagOf(JSON.stringify(body));
    for (const header of [etag, etag.slice(2), `"zzz", ${etag}`, "*"]) {
      const res = cachedJson(get({ "if-none-match": header }), body, 2);
      expect({ header, status: res.status }).toEqual({ header, status: 304 });
      expect(res.headers.get("etag")).toBe(etag);
      expect(res.headers.get("cache-control")).toBe("public, max-age=2");
      expect(await res.text()).toBe("");
    }
    expect(cachedJson(get({ "if-none-match": 'W/"other"' }), body, 2).status).toBe(200);
    expect(cachedJson(get(), { ...body, next: "c" }, 2).headers.get("etag")).not.toBe(etag);
  });

  test("a request with a token (header, cookie or query) gets a private answer", () => {
    expect(cachedJson(get({ authorization: "Bearer x.y.z" }), body, 1).headers.get("cache-control")).toBe("private, max-age=1");
    expect(cachedJson(get({ cookie: "a=b; touchline_token=x.y.z" }), body, 1).headers.get("cache-control")).toBe("private, max-age=1");
    expect(cachedJson(new Request("http://n/matches?access_token=x.y.z"), body, 1).headers.get("cache-control")).toBe("private, max-age=1");
    expect(cachedJson(get({ cookie: "a=b" }), body, 1).headers.get("cache-control")).toBe("public, max-age=1");
  });

  test("noneMatch compares weakly and handles lists", () => {
    expect(noneMatch(null, 'W/"a"')).toBe(false);
    expect(noneMatch('"a"', 'W/"a"')).toBe(true);
    expect(noneMatch('W/"b" , W/"a"', 'W/"a"')).toBe(true);
    expect(noneMatch('W/"b"', 'W/"a"')).toBe(false);
  });

  test("addVary keeps what is there and adds once", () => {
    const h = new Headers({ Vary: "Origin" });
    addVary(h, "Accept-Encoding");
    addVary(h, "accept-encoding");
    expect(h.get("vary")).toBe("Origin, Accept-Encoding");
  });
});
