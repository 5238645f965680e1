/**
 * IP addresses as the limiters see them: parsed strictly (a proxy header is attacker-controlled text),
 * IPv4-mapped IPv6 folded into IPv4 so one client has one form, and a limiter key that groups an IPv6
 * client by its /64, since one subscriber line usually holds a whole /64 and could otherwise rotate
 * through 2^64 addresses to dodge every per-address limit.
 */

export interface IpAddress {
  version: 4 | 6;
  /** The address as an unsigned integer: 32 bits for IPv4, 128 for IPv6. */
  value: bigint;
}

export const IPV4_BITS = 32;
export const IPV6_BITS = 128;
/** Prefix an IPv6 client is keyed by (a typical customer allocation is a /64 or wider). */
const IPV6_KEY_PREFIX_BITS = 64;

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;
const IPV6_HEXTETS = 8;
/** ::ffff:a.b.c.d holds an IPv4 address (a dual-stack listener reports IPv4 clients so). */
const IPV4_MAPPED_HIGH_BITS = 0xffffn;
const IPV4_MASK = (1n << 32n) - 1n;

function parseIpv4(text: string): bigint | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  let value = 0n;
  for (let i = 1; i <= 4; i++) {
    const octet = m[i]!;
    // "010" is octal to some parsers and decimal to others: refuse the ambiguity.
    if (octet.length > 1 && octet.startsWith("0")) return undefined;
    const n = Number(octet);
    if (n > 255) return undefined;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  const zone = text.indexOf("%");
  const bare = zone === -1 ? text : text.slice(0, zone);
  if (bare.length === 0 || bare.length > 45) return undefined;
  const halves = bare.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string): string[] => (part === "" ? [] : part.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const words: number[] = [];
  const pushAll = (parts: string[], allowIpv4Tail: boolean): boolean => {
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (allowIpv4Tail && i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (v4 === undefined) return false;
        words.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else {
        if (!HEXTET.test(part)) return false;
        words.push(parseInt(part, 16));
      }
    }
    return true;
  };
  if (!pushAll(head, halves.length === 1)) return undefined;
  const headCount = words.length;
  if (!pushAll(tail, true)) return undefined;
  const missing = IPV6_HEXTETS - words.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  words.splice(headCount, 0, ...new Array<number>(missing).fill(0));
  let value = 0n;
  for (const w of words) value = (value << 16n) | BigInt(w);
  return value;
}

/** Parses a bare IPv4 or IPv6 address (no port, no brackets); undefined when it is not one. */
export function parseIp(text: string): IpAddress | undefined {
  if (text.includes(":")) {
    const value = parseIpv6(text);
    if (value === undefined) return undefined;
    if (value >> 32n === IPV4_MAPPED_HIGH_BITS) return { version: 4, value: value & IPV4_MASK };
    return { version: 6, value };
  }
  const v4 = parseIpv4(text);
  return v4 === undefined ? undefined : { version: 4, value: v4 };
}

/**
 * Parses one `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
 * `[2001:db8::1]:443`) as some proxies write it.
 */
export function parseForwardedEntry(entry: string): IpAddress | undefined {
  const text = entry.trim();
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close === -1) return undefined;
    const rest = text.slice(close + 1);
    if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return undefined;
    return parseIp(text.slice(1, close));
  }
  const v4WithPort = /^([\d.]+):\d{1,5}$/.exec(text);
  return parseIp(v4WithPort ? v4WithPort[1]! : text);
}

export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) {
    const v = Number(ip.value);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const words: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) words.push(((ip.value >> shift) & 0xffffn).toString(16));
  // RFC 5952: the longest run of two or more zero words becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < words.length; ) {
    if (words[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < words.length && words[j] === "0") j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  if (bestStart === -1) return words.join(":");
  return `${words.slice(0, bestStart).join(":")}::${words.slice(bestStart + bestLength).join(":")}`;
}

/** What per-address limits count by: the IPv4 address, or the IPv6 address's /64. */
export function limiterKey(ip: IpAddress): string {
  if (ip.version === 4) return formatIp(ip);
  const hostBits = BigInt(IPV6_BITS - IPV6_KEY_PREFIX_BITS);
  return `${formatIp({ version: 6, value: (ip.value >> hostBits) << hostBits })}/${IPV6_KEY_PREFIX_BITS}`;
}
