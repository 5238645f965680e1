/**
 * The PROXY protocol header (haproxy's spec, versions 1 and 2): what an L4 balancer sends first on each
 * connection it opens to a backend, naming the client it accepted. Pure: bytes in, a verdict out, so it
 * is unit-tested without sockets (src/proxy/proxyFront.ts does the I/O).
 *
 * v1 is one text line, at most 107 bytes: `PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n` (or TCP6, or
 * `PROXY UNKNOWN ...\r\n`). v2 is binary: a 12-byte signature, version/command, family/protocol, a
 * 16-bit length, then the addresses and optional TLVs (skipped: nothing here needs them).
 * Addresses come out in src/limits/ipAddress.ts's one form, so a client has one limiter key.
 */
import { formatIp, parseIp } from "../limits/ipAddress.ts";

/** The client the balancer accepted; absent for v2 LOCAL (the balancer's own health check) and v1 UNKNOWN. */
export interface ProxySource {
  address: string;
  port: number;
}

export type ProxyHeaderVerdict =
  /** More bytes are needed to decide. */
  | { kind: "incomplete" }
  /** The connection does not start with a PROXY header (an HTTP request, a TLS hello). */
  | { kind: "absent" }
  /** A PROXY header, but a broken one: the connection is refused. */
  | { kind: "invalid"; reason: string }
  /** A whole header of `length` bytes; what follows it is the client's own stream. */
  | { kind: "header"; length: number; source: ProxySource | undefined };

/** v1's longest line, CRLF included (the spec's figure). */
export const V1_MAX_BYTES = 107;
/** v2's fixed part: signature, version/command, family, length. */
const V2_FIXED_BYTES = 16;
/** Largest v2 header accepted (addresses plus TLVs): haproxy's own TLVs are far smaller. */
export const V2_MAX_BYTES = 1024;

const V1_PREFIX = new TextEncoder().encode("PROXY ");
/** v1 lines are ASCII; latin1 maps every byte, so a stray one fails the checks rather than the decoder. */
const V1_DECODER = new TextDecoder("latin1");
const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);

const V2_VERSION = 0x2;
const V2_COMMAND_LOCAL = 0x0;
const V2_COMMAND_PROXY = 0x1;
const V2_FAMILY_INET = 0x1;
const V2_FAMILY_INET6 = 0x2;
const V2_TRANSPORT_STREAM = 0x1;
const INET_ADDRESSES_BYTES = 12;
const INET6_ADDRESSES_BYTES = 36;

/** True while `bytes` is still a prefix of `expected` or starts with all of it. */
function agreesWith(bytes: Uint8Array, expected: Uint8Array): boolean {
  const n = Math.min(bytes.length, expected.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== expected[i]) return false;
  return true;
}

/** Decides what the first bytes of a connection are. */
export function parseProxyHeader(bytes: Uint8Array): ProxyHeaderVerdict {
  if (bytes.length === 0) return { kind: "incomplete" };
  if (bytes[0] === V1_PREFIX[0]) {
    if (!agreesWith(bytes, V1_PREFIX)) return { kind: "absent" };
    return bytes.length < V1_PREFIX.length ? { kind: "incomplete" } : parseV1(bytes);
  }
  if (bytes[0] === V2_SIGNATURE[0]) {
    if (!agreesWith(bytes, V2_SIGNATURE)) return { kind: "absent" };
    return parseV2(bytes);
  }
  return { kind: "absent" };
}

function parseV1(bytes: Uint8Array): ProxyHeaderVerdict {
  const lf = bytes.indexOf(0x0a);
  if (lf < 0) {
    return bytes.length >= V1_MAX_BYTES ? { kind: "invalid", reason: "v1 line too long" } : { kind: "incomplete" };
  }
  if (lf + 1 > V1_MAX_BYTES || lf === 0 || bytes[lf - 1] !== 0x0d) return { kind: "invalid", reason: "v1 line malformed" };
  const line = V1_DECODER.decode(bytes.subarray(0, lf - 1));
  const parts = line.split(" ");
  const length = lf + 1;
  if (parts[1] === "UNKNOWN") return { kind: "header", length, source: undefined };
  if (parts.length !== 6) return { kind: "invalid", reason: "v1 line malformed" };
  const [, family, src, dst, srcPort, dstPort] = parts as [string, string, string, string, string, string];
  const version = family === "TCP4" ? 4 : family === "TCP6" ? 6 : undefined;
  if (version === undefined) return { kind: "invalid", reason: `v1 family ${JSON.stringify(family.slice(0, 16))}` };
  const source = normalised(src, version);
  if (source === undefined || normalised(dst, version) === undefined) return { kind: "invalid", reason: "v1 address malformed" };
  const port = parsePort(srcPort);
  if (port === undefined || parsePort(dstPort) === undefined) return { kind: "invalid", reason: "v1 port malformed" };
  return { kind: "header", length, source: { address: source, port } };
}

function parseV2(bytes: Uint8Array): ProxyHeaderVerdict {
  if (bytes.length < V2_FIXED_BYTES) return { kind: "incomplete" };
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== V2_VERSION) return { kind: "invalid", reason: "v2 version" };
  const command = versionCommand & 0x0f;
  if (command !== V2_COMMAND_LOCAL && command !== V2_COMMAND_PROXY) return { kind: "invalid", reason: "v2 command" };
  const bodyLength = (bytes[14]! << 8) | bytes[15]!;
  const length = V2_FIXED_BYTES + bodyLength;
  if (length > V2_MAX_BYTES) return { kind: "invalid", reason: "v2 header too long" };
  if (bytes.length < length) return { kind: "incomplete" };
  // LOCAL: the balancer speaking for itself (health checks); the addresses, if any, are to be ignored.
  if (command === V2_COMMAND_LOCAL) return { kind: "header", length, source: undefined };
  const family = bytes[13]! >> 4;
  const transport = bytes[13]! & 0x0f;
  const body = bytes.subarray(V2_FIXED_BYTES, length);
  // UNSPEC, UNIX or a datagram transport: a proxied connection whose source means nothing here.
  if (transport !== V2_TRANSPORT_STREAM || (family !== V2_FAMILY_INET && family !== V2_FAMILY_INET6)) {
    return { kind: "header", length, source: undefined };
  }
  if (family === V2_FAMILY_INET) {
    if (body.length < INET_ADDRESSES_BYTES) return { kind: "invalid", reason: "v2 addresses truncated" };
    // Sixteen or four raw bytes are always an address; parseIp only brings it to the one form.
    const address = formatIp(parseIp(`${body[0]}.${body[1]}.${body[2]}.${body[3]}`)!);
    return { kind: "header", length, source: { address, port: (body[8]! << 8) | body[9]! } };
  }
  if (body.length < INET6_ADDRESSES_BYTES) return { kind: "invalid", reason: "v2 addresses truncated" };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((body[i]! << 8) | body[i + 1]!).toString(16));
  const address = formatIp(parseIp(groups.join(":"))!);
  return { kind: "header", length, source: { address, port: (body[32]! << 8) | body[33]! } };
}

function parsePort(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** The address in the one form the limiters use (IPv4-mapped IPv6 folded to IPv4), if it is one of `version`. */
function normalised(text: string, version: 4 | 6): string | undefined {
  const ip = parseIp(text);
  if (!ip) return undefined;
  // The family is judged by how the address is written: ::ffff:a.b.c.d is a TCP6 address (and comes out
  // as the IPv4 client it maps), a dotted quad a TCP4 one.
  const given = text.includes(":") ? 6 : 4;
  if (given !== version) return undefined;
  return formatIp(ip);
}
