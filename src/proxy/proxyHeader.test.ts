import { describe, expect, test } from "bun:test";
import { parseProxyHeader, V1_MAX_BYTES, V2_MAX_BYTES } from "./proxyHeader.ts";

const text = (s: string) => new TextEncoder().encode(s);
const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** A v2 header: command 1 = PROXY, 0 = LOCAL; family byte 0x11 TCP over IPv4, 0x21 TCP over IPv6. */
function v2(command: number, family: number, body: number[]): Uint8Array {
  return Uint8Array.from([...SIGNATURE, 0x20 | command, family, body.length >> 8, body.length & 0xff, ...body]);
}
const ipv4Body = (src: number[], dst: number[], srcPort: number, dstPort: number) => [
  ...src,
  ...dst,
  srcPort >> 8,
  srcPort & 0xff,
  dstPort >> 8,
  dstPort & 0xff,
];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe("v1", () => {
  test("TCP4 and TCP6 lines name the source; the length covers the CRLF only, not what follows", () => {
    const line = "PROXY TCP4 203.0.113.7 10.0.0.2 51234 443\r\n";
    expect(parseProxyHeader(text(`${line}GET / HTTP/1.1\r\n`))).toEqual({
      kind: "header",
      length: line.length,
      source: { address: "203.0.113.7", port: 51234 },
    });
    const six = "PROXY TCP6 2001:db8::1 2001:db8::2 40000 80\r\n";
    expect(parseProxyHeader(text(six))).toEqual({ kind: "header", length: six.length, source: { address: "2001:db8::1", port: 40000 } });
  });

  test("an IPv4-mapped TCP6 source is the IPv4 client, in the limiters' one form", () => {
    const v = parseProxyHeader(text("PROXY TCP6 ::ffff:198.51.100.4 ::1 1 2\r\n"));
    expect(v).toMatchObject({ kind: "header", source: { address: "198.51.100.4" } });
  });

  test("UNKNOWN is a header without a source", () => {
    expect(parseProxyHeader(text("PROXY UNKNOWN\r\n"))).toEqual({ kind: "header", length: 15, source: undefined });
    expect(parseProxyHeader(text("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"))).toMatchObject({ kind: "header", source: undefined });
  });

  test("every prefix of a header is incomplete, byte by byte", () => {
    const line = text("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n");
    for (let n = 1; n < line.length; n++) expect(parseProxyHeader(line.subarray(0, n)).kind).toBe("incomplete");
    expect(parseProxyHeader(line).kind).toBe("header");
  });

  test("broken lines are invalid, with a reason", () => {
    const broken = [
      "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", // a field short
      "PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n", // no such family
      "PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n", // not an address
      "PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n", // the wrong family's address
      "PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
      "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n", // port out of range
      "PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n", // leading zero
      "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", // LF without CR
      "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n", // two spaces
    ];
    for (const line of broken) expect(parseProxyHeader(text(line)).kind, line).toBe("invalid");
  });

  test("a line that never ends is invalid once past the longest header, not held forever", () => {
    const long = text(`PROXY TCP4 ${"1".repeat(V1_MAX_BYTES)}`);
    expect(parseProxyHeader(long)).toEqual({ kind: "invalid", reason: "v1 line too long" });
    expect(parseProxyHeader(text(`PROXY TCP4 ${"9".repeat(V1_MAX_BYTES)}\r\n`)).kind).toBe("invalid");
  });
});

describe("v2", () => {
  test("PROXY over TCP4 and TCP6 names the source; TLVs after the addresses are skipped", () => {
    const four = v2(1, 0x11, ipv4Body([203, 0, 113, 7], [10, 0, 0, 2], 51234, 443));
    expect(parseProxyHeader(concat(four, text("GET /")))).toEqual({ kind: "header", length: 28, source: { address: "203.0.113.7", port: 51234 } });
    const src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
    const six = v2(1, 0x21, [...src6, ...new Array(16).fill(0), 0x9c, 0x40, 0, 80]);
    expect(parseProxyHeader(six)).toEqual({ kind: "header", length: 52, source: { address: "2001:db8::42", port: 40000 } });
    const tlv = [0x04, 0x00, 0x03, 0x61, 0x62, 0x63]; // PP2_TYPE_NOOP, 3 bytes
    const withTlv = v2(1, 0x11, [...ipv4Body([198, 51, 100, 1], [10, 0, 0, 2], 1, 2), ...tlv]);
    expect(parseProxyHeader(withTlv)).toEqual({ kind: "header", length: 34, source: { address: "198.51.100.1", port: 1 } });
  });

  test("LOCAL (the balancer's own health check), UNSPEC, UNIX and UDP carry no client", () => {
    expect(parseProxyHeader(v2(0, 0x11, ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)))).toMatchObject({ kind: "header", source: undefined });
    expect(parseProxyHeader(v2(0, 0x00, []))).toEqual({ kind: "header", length: 16, source: undefined });
    expect(parseProxyHeader(v2(1, 0x00, []))).toMatchObject({ kind: "header", source: undefined });
    expect(parseProxyHeader(v2(1, 0x31, new Array(216).fill(0)))).toMatchObject({ kind: "header", source: undefined });
    expect(parseProxyHeader(v2(1, 0x12, ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)))).toMatchObject({ kind: "header", source: undefined });
  });

  test("every prefix is incomplete until the length the header states", () => {
    const h = v2(1, 0x11, ipv4Body([203, 0, 113, 7], [10, 0, 0, 2], 1, 2));
    for (let n = 1; n < h.length; n++) expect(parseProxyHeader(h.subarray(0, n)).kind).toBe("incomplete");
  });

  test("a wrong version or command, truncated addresses, a header too long: invalid", () => {
    const bad = (mutate: (h: Uint8Array) => void) => {
      const h = v2(1, 0x11, ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
      mutate(h);
      return parseProxyHeader(h).kind;
    };
    expect(bad((h) => (h[12] = 0x11))).toBe("invalid"); // version 1 in the binary form
    expect(bad((h) => (h[12] = 0x22))).toBe("invalid"); // command 2
    expect(parseProxyHeader(v2(1, 0x11, [1, 2, 3, 4])).kind).toBe("invalid"); // addresses cut short
    expect(parseProxyHeader(v2(1, 0x21, ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))).kind).toBe("invalid");
    const huge = Uint8Array.from([...SIGNATURE, 0x21, 0x11, (V2_MAX_BYTES >> 8) & 0xff, V2_MAX_BYTES & 0xff]);
    expect(parseProxyHeader(huge)).toEqual({ kind: "invalid", reason: "v2 header too long" });
  });
});

describe("no header", () => {
  test("HTTP requests, a TLS hello and stray bytes are absent, decided at the first byte that differs", () => {
    for (const start of ["GET / HTTP/1.1\r\n", "POST /matches/a/events", "PUT", "PATCH", "\x16\x03\x01", "\r\nGET /", "PROXYGET"]) {
      expect(parseProxyHeader(text(start)).kind, JSON.stringify(start)).toBe("absent");
    }
    expect(parseProxyHeader(text("P")).kind).toBe("incomplete"); // POST or PROXY: not yet known
    expect(parseProxyHeader(text("PO")).kind).toBe("absent");
    expect(parseProxyHeader(new Uint8Array(0)).kind).toBe("incomplete");
  });
});
