/**
 * Generated hostile requests for the HTTP fuzz test. Case `i` of seed `s` is built from its own PRNG
 * (seeded from s and i), so any failing case can be rebuilt alone from the two numbers it prints.
 *
 * Two kinds: `fetch` cases (well-formed HTTP with hostile content: paths, methods, headers, bodies,
 * resume ids, query strings, match lists) and `raw` cases (bytes written to a socket: malformed HTTP
 * that no client library would send).
 */
import { seededRandom } from "../helpers/seededRandom.ts";

export type Random = () => number;

export interface FetchCase {
  kind: "fetch";
  method: string;
  /** Path and query, starting with "/". */
  target: string;
  headers: [string, string][];
  body?: Uint8Array<ArrayBuffer>;
  /** Head bytes (request line and headers), to know when Bun's own parser refuses it first. */
  headBytes: number;
}

export interface RawCase {
  kind: "raw";
  parts: Uint8Array[];
  /** The request is deliberately unfinished: the node may well wait for the rest. */
  unfinished: boolean;
}

export type FuzzCase = FetchCase | RawCase;

/** Matches most cases use, so the node holds a bounded set of match actors. */
export const KNOWN_MATCHES = Array.from({ length: 16 }, (_, i) => `fz${i}`);
const EVENT_TYPES = ["goal", "card", "kickoff", "substitution", "halftime", "fulltime", "x.y-z_1"];
const INJECTIONS = ["\n\nevent: evil\ndata: pwned\n\n", "\r\nid: 999\r\n", "\rretry: 1\r", "\u2028\u2029", "\0", "data: x", "\n: comment\n"];
const METHODS_RARE = ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get", "FOO", "CONNECT-ISH", "M"];
const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/merge-patch+json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=zz",
  "application/jsonx",
  "json",
  "",
  ";;;",
  "application/json; charset=\u00ff",
];
const PRINTABLE = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

const utf8 = new TextEncoder();

function caseRandom(seed: number, index: number): Random {
  // Distinct, well-mixed seeds per case (Knuth's multiplicative hash of the index).
  return seededRandom((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

/** Percent-encodes the UTF-8 of any text (a lone surrogate becomes U+FFFD, where encodeURIComponent throws). */
function percentEncode(text: string): string {
  let out = "";
  for (const b of utf8.encode(text)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const int = (r: Random, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const chance = (r: Random, p: number) => r() < p;

function stringOf(r: Random, alphabet: string, min: number, max: number): string {
  let s = "";
  const n = int(r, min, max);
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

/** Any UTF-16 code units, lone surrogates and controls included. */
function anyText(r: Random, max: number): string {
  let s = "";
  const n = int(r, 0, max);
  for (let i = 0; i < n; i++) {
    const roll = r();
    if (roll < 0.6) s += PRINTABLE[Math.floor(r() * PRINTABLE.length)];
    else if (roll < 0.7) s += pick(r, INJECTIONS);
    else if (roll < 0.8) s += String.fromCharCode(int(r, 0, 31));
    else if (roll < 0.9) s += String.fromCharCode(int(r, 0xd800, 0xdfff));
    else s += String.fromCodePoint(int(r, 0x80, 0x10ffff));
  }
  return s;
}

/** Header-safe text (what fetch accepts): bytes 0x20-0xFF, no CR/LF/NUL. */
function headerText(r: Random, min: number, max: number): string {
  let s = "";
  const n = int(r, min, max);
  for (let i = 0; i < n; i++) s += chance(r, 0.9) ? PRINTABLE[Math.floor(r() * PRINTABLE.length)] : String.fromCharCode(int(r, 0x80, 0xff));
  return s.trim() || "x";
}

function matchId(r: Random): string {
  const roll = r();
  if (roll < 0.85) return pick(r, KNOWN_MATCHES);
  if (roll < 0.88) return `fz-new-${stringOf(r, "abcdefghij0123456789", 1, 8)}`;
  return pick(r, ["", "a".repeat(65), "a.b", "%2F", "a%00b", "%C3%A9", "..", "a b", "%", "%zz", percentEncode(anyText(r, 20)), "a:b", "a,b", "<script>"]);
}

function resumeId(r: Random): string {
  return pick(r, [
    () => String(int(r, 0, 5000)),
    () => "99999999999999999999999",
    () => "-1",
    () => "1e5",
    () => "0x10",
    () => " 12 ",
    () => `${pick(r, KNOWN_MATCHES)}:${int(r, 0, 100)},${pick(r, KNOWN_MATCHES)}:${stringOf(r, "0123456789x-", 0, 6)}`,
    () => Array.from({ length: int(r, 1, 100) }, () => `${pick(r, KNOWN_MATCHES)}:${int(r, 0, 9)}`).join(","),
    () => headerText(r, 1, 40),
    () => "9".repeat(int(r, 1, 4000)),
    () => ":,:,:",
  ])();
}

function queryString(r: Random, forced: [string, string][] = []): string {
  const pairs: [string, string][] = [...forced];
  const n = int(r, 0, 4);
  for (let i = 0; i < n; i++) {
    const key = pick(r, ["lastEventId", "match", "hello", "access_token", "limit", "cursor", "after", "wait", stringOf(r, PRINTABLE, 0, 8)]);
    const value = pick(r, [() => resumeId(r), () => String(int(r, -5, 2000)), () => "0", () => anyText(r, 30), () => pick(r, KNOWN_MATCHES)])();
    pairs.push([key, value]);
  }
  if (pairs.length === 0) return "";
  // Mostly encoded properly; sometimes raw percent garbage a browser would never send.
  const encoded = pairs.map(([k, v]) =>
    chance(r, 0.9) ? `${percentEncode(k)}=${percentEncode(v)}` : `${k.replace(/[#\s]/g, "")}=${pick(r, ["%", "%zz", "%00", "%FF%FE", "+", "%%"])}`,
  );
  return `?${encoded.join("&")}`;
}

/** Random JSON of bounded size; sometimes deep. */
function randomJson(r: Random, depth: number): unknown {
  const roll = r();
  if (depth <= 0 || roll < 0.3) {
    return pick(r, [() => anyText(r, 20), () => int(r, -1e6, 1e6), () => r() * 1e308, () => null, () => chance(r, 0.5), () => 2 ** 53 + 2])();
  }
  if (roll < 0.65) return Array.from({ length: int(r, 0, 4) }, () => randomJson(r, depth - 1));
  const obj: Record<string, unknown> = {};
  for (let i = 0, n = int(r, 0, 4); i < n; i++) obj[pick(r, ["__proto__", "constructor", "type", "match", anyText(r, 8)])] = randomJson(r, depth - 1);
  return obj;
}

function deepJsonText(depth: number, open: string, close: string, leaf: string): string {
  return open.repeat(depth) + leaf + close.repeat(depth);
}

function publishBody(r: Random): Uint8Array<ArrayBuffer> {
  const roll = r();
  let text: string;
  if (roll < 0.25) {
    // Valid events, carrying text meant to break out of the SSE framing.
    const body: Record<string, unknown> = { type: pick(r, EVENT_TYPES), data: chance(r, 0.5) ? anyText(r, 40) : randomJson(r, 3) };
    if (chance(r, 0.4)) body.state = { note: anyText(r, 20), n: int(r, 0, 9), nested: randomJson(r, 2) };
    if (chance(r, 0.2)) body.key = stringOf(r, "abcdef", 1, 3);
    text = JSON.stringify(body);
  } else if (roll < 0.35) {
    const depth = pick(r, [100, 1000, 5000, 20_000]);
    text = pick(r, [
      () => `{"type":"goal","data":${deepJsonText(depth, "[", "]", "1")}}`,
      () => `{"type":"goal","state":${deepJsonText(Math.min(depth, 5000), '{"a":', "}", "1")}}`,
      () => deepJsonText(depth, "[", "]", ""),
    ])();
  } else if (roll < 0.45) {
    text = JSON.stringify({ type: "goal", data: "h".repeat(int(r, 60_000, 200_000)) });
  } else if (roll < 0.55) {
    text = JSON.stringify(
      pick(r, [
        { type: "snapshot" },
        { type: "touchline.x" },
        { type: "" },
        { type: 7 },
        { type: "goal\nevent: x" },
        [],
        null,
        "goal",
        { type: "goal", state: [1] },
      ]),
    );
  } else if (roll < 0.7) {
    text = JSON.stringify(randomJson(r, 4));
  } else if (roll < 0.85) {
    text = anyText(r, 200);
  } else {
    const bytes = new Uint8Array(int(r, 0, 4096));
    for (let i = 0; i < bytes.length; i++) bytes[i] = int(r, 0, 255);
    return bytes;
  }
  return utf8.encode(text);
}

function randomPath(r: Random): string {
  const segments = Array.from({ length: int(r, 0, 6) }, () =>
    pick(r, [
      () => stringOf(r, "abcxyz0123-_.~", 0, 12),
      () => percentEncode(anyText(r, 10)),
      () => "..",
      () => "",
      () => "%2e%2e",
      () => "matches",
      () => "events",
    ])(),
  );
  return `/${segments.join("/")}`;
}

function headersFor(r: Random, method: string, hasBody: boolean): [string, string][] {
  const h: [string, string][] = [];
  if (chance(r, 0.6)) h.push(["accept", pick(r, ["text/event-stream", "*/*", "application/json", "text/html,*/*;q=0.8", headerText(r, 1, 30)])]);
  if (chance(r, 0.3)) h.push(["last-event-id", resumeId(r)]);
  if (hasBody || chance(r, 0.1)) h.push(["content-type", pick(r, CONTENT_TYPES) || "application/json"]);
  if (chance(r, 0.1)) h.push(["x-forwarded-for", pick(r, ["1.2.3.4", "::1", "garbage", "1.2.3.4, 5.6.7.8", headerText(r, 1, 60)])]);
  if (chance(r, 0.1))
    h.push(["authorization", pick(r, ["Bearer x.y.z", "Bearer", "Basic Zm9vOmJhcg==", `Bearer ${headerText(r, 1, 300).replace(/\s/g, "")}`])]);
  if (chance(r, 0.05)) h.push(["cookie", `touchline_token=${headerText(r, 0, 80).replace(/[;\s]/g, "")}; other=1`]);
  if (chance(r, 0.05)) h.push(["origin", pick(r, ["https://evil.example", "null", "http://127.0.0.1:3000", headerText(r, 1, 30)])]);
  if (method === "OPTIONS" && chance(r, 0.5)) h.push(["access-control-request-method", pick(r, ["GET", "POST", "DELETE"])]);
  if (chance(r, 0.1)) h.push([`x-${stringOf(r, TOKEN_CHARS, 1, 20)}`, headerText(r, 0, 200)]);
  if (chance(r, 0.02)) h.push(["x-huge", "h".repeat(int(r, 4000, 24_000))]);
  if (chance(r, 0.01)) for (let i = 0; i < int(r, 50, 150); i++) h.push([`x-many-${i}`, headerText(r, 1, 40)]);
  return h;
}

function targetFor(r: Random): string {
  const roll = r();
  if (roll < 0.35) {
    const m = matchId(r);
    return `/matches/${m}/events${queryString(r)}`;
  }
  if (roll < 0.5) {
    const count = pick(r, [0, 1, 2, 3, 5, 10, 64, 65, 100]);
    const matches = Array.from({ length: count }, () => matchId(r));
    if (chance(r, 0.2) && matches.length > 0) matches.push(matches[0]!);
    return `/events${queryString(
      r,
      matches.map((m) => ["match", m]),
    )}`;
  }
  if (roll < 0.6) return `/matches/${matchId(r)}/poll${queryString(r, [["wait", String(int(r, 0, 100))]])}`;
  if (roll < 0.68) return `/matches/${matchId(r)}${queryString(r)}`;
  if (roll < 0.73) return `/matches${queryString(r)}`;
  if (roll < 0.78) return pick(r, ["/cluster", `/cluster/owner/${matchId(r)}`, "/metrics", "/healthz", "/readyz", "/", "/web/app.js", `/web/${matchId(r)}`]);
  return `${randomPath(r)}${queryString(r)}`;
}

function fetchCase(r: Random): FetchCase {
  const roll = r();
  const method = roll < 0.6 ? "GET" : roll < 0.9 ? "POST" : pick(r, METHODS_RARE);
  const publishing = method === "POST" && chance(r, 0.85);
  const target = publishing ? `/matches/${matchId(r)}/events${queryString(r)}` : targetFor(r);
  const body = method === "POST" || method === "PUT" || method === "PATCH" ? publishBody(r) : undefined;
  const headers = headersFor(r, method, body !== undefined);
  let headBytes = method.length + target.length + 14;
  for (const [k, v] of headers) headBytes += k.length + v.length + 4;
  return { kind: "fetch", method, target, headers, body, headBytes };
}

/** Malformed or unusual HTTP on the wire. */
function rawCase(r: Random, host: string): RawCase {
  const line = (s: string) => utf8.encode(s);
  const okHead = (extra = "") => `GET /readyz HTTP/1.1\r\nHost: ${host}\r\n${extra}`;
  const variants: (() => RawCase)[] = [
    () => ({ kind: "raw", parts: [line(`${anyText(r, 60)}\r\n\r\n`)], unfinished: false }),
    () => ({ kind: "raw", parts: [line(`GET /readyz HTTP/${pick(r, ["9.9", "1", "1.10", "0.9", "2.0", "x"])}\r\nHost: ${host}\r\n\r\n`)], unfinished: false }),
    () => ({ kind: "raw", parts: [line(`${okHead("NoColonHere\r\n")}\r\n`)], unfinished: false }),
    () => ({ kind: "raw", parts: [line(`${okHead("X-Fold: a\r\n continued\r\n")}\r\n`)], unfinished: false }),
    () => ({ kind: "raw", parts: [line(`${okHead("X-Nul: a\u0000b\r\n")}\r\n`)], unfinished: false }),
    () => ({ kind: "raw", parts: [line(`GET /readyz HTTP/1.1\rHost: ${host}\r\r`)], unfinished: true }),
    () => ({ kind: "raw", parts: [line(`GET /readyz HTTP/1.1\nHost: ${host}\n\n`)], unfinished: false }),
    () => ({
      kind: "raw",
      parts: [
        line(
          `POST /matches/fz0/events HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /readyz HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
        ),
      ],
      unfinished: false,
    }),
    () => ({
      kind: "raw",
      parts: [
        line(
          `POST /matches/fz0/events HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${pick(r, ["-1", "abc", "1, 2", "99999999999999999999", " 3"])}\r\n\r\n{}`,
        ),
      ],
      unfinished: false,
    }),
    () => ({
      kind: "raw",
      parts: [
        line(
          `POST /matches/fz0/events HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${pick(r, ["zz", "-1", "fffffffffffffffff", "2;ext=1"])}\r\n{}\r\n0\r\n\r\n`,
        ),
      ],
      unfinished: false,
    }),
    () => ({ kind: "raw", parts: [line(`${okHead()}\r\n${okHead()}\r\n${okHead("Connection: close\r\n")}\r\n`)], unfinished: false }),
    () => ({
      kind: "raw",
      parts: [line(`GET /matches/fz1/events HTTP/1.1\r\nHost: ${host}\r\nLast-Event-ID: ${anyText(r, 40).replace(/[\r\n]/g, "")}\r\n\r\n`)],
      unfinished: false,
    }),
    () => ({ kind: "raw", parts: [line(`GET /${"a".repeat(int(r, 10_000, 40_000))} HTTP/1.1\r\nHost: ${host}\r\n\r\n`)], unfinished: false }),
    () => ({ kind: "raw", parts: [line(okHead()), line("X-Slow: 1\r\n")], unfinished: true }),
    () => {
      const bytes = new Uint8Array(int(r, 1, 2048));
      for (let i = 0; i < bytes.length; i++) bytes[i] = int(r, 0, 255);
      return { kind: "raw", parts: [bytes], unfinished: true };
    },
  ];
  return pick(r, variants)();
}

/** Case `index` of `seed`: about 3% raw-socket cases, the rest well-formed HTTP with hostile content. */
export function buildCase(seed: number, index: number, host: string): FuzzCase {
  const r = caseRandom(seed, index);
  return chance(r, 0.03) ? rawCase(r, host) : fetchCase(r);
}
