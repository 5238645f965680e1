/**
 * Client addresses: strict IP parsing (X-Forwarded-For is attacker text), the IPv6 /64 key, address
 * sets for TRUST_PROXY and LIMITS_EXEMPT, and which X-Forwarded-For entry is believed.
 */
import { describe, expect, test } from "bun:test";
import { formatIp, limiterKey, parseForwardedEntry, parseIp } from "../../src/limits/ipAddress.ts";
import { AddressSet } from "../../src/limits/addressSet.ts";
import { MAX_FORWARDED_ENTRIES, parseTrustProxy, resolveClientAddress, trustsPeer } from "../../src/limits/trustProxy.ts";
import { seededRandom } from "../helpers/seededRandom.ts";

const ip = (text: string) => {
  const parsed = parseIp(text);
  if (!parsed) throw new Error(`test address ${text} did not parse`);
  return parsed;
};

describe("parseIp", () => {
  test("IPv4 and IPv6 forms round trip to their canonical text", () => {
    const cases: [string, string][] = [
      ["192.0.2.7", "192.0.2.7"],
      ["0.0.0.0", "0.0.0.0"],
      ["255.255.255.255", "255.255.255.255"],
      ["::1", "::1"],
      ["::", "::"],
      ["2001:DB8::1", "2001:db8::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["fe80::1%eth0", "fe80::1"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
      ["1::", "1::"],
      ["::ffff:192.0.2.7", "192.0.2.7"], // a dual-stack listener's view of an IPv4 client
      ["::FFFF:c000:0207", "192.0.2.7"],
      ["64:ff9b::192.0.2.7", "64:ff9b::c000:207"],
    ];
    for (const [text, canonical] of cases) expect({ text, got: formatIp(ip(text)) }).toEqual({ text, got: canonical });
  });

  test("anything else is refused", () => {
    for (const bad of [
      "",
      " ",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.04",
      "1.2.3.-4",
      "a.b.c.d",
      "1.2.3.4 ",
      "unknown",
      ":::",
      "1:::2",
      "1::2::3",
      "12345::",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "::g",
      "1:2:3:4:5:6:7::8",
      "[::1]",
      "::1.2.3",
      "::256.1.1.1",
      "x".repeat(100),
    ]) {
      expect({ bad, parsed: parseIp(bad) }).toEqual({ bad, parsed: undefined });
    }
  });

  test("random text never throws and never parses to something that formats differently twice", () => {
    const random = seededRandom(606);
    const alphabet = "0123456789abcdefABCDEF:.%[]/ x-";
    for (let i = 0; i < 20_000; i++) {
      let s = "";
      const n = Math.floor(random() * 24);
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(random() * alphabet.length)];
      const parsed = parseIp(s);
      if (parsed) expect(parseIp(formatIp(parsed))).toEqual(parsed);
    }
  });

  test("X-Forwarded-For entries may carry a port or brackets", () => {
    expect(formatIp(parseForwardedEntry(" 192.0.2.7:5678 ")!)).toBe("192.0.2.7");
    expect(formatIp(parseForwardedEntry("[2001:db8::1]:443")!)).toBe("2001:db8::1");
    expect(formatIp(parseForwardedEntry("[2001:db8::1]")!)).toBe("2001:db8::1");
    expect(formatIp(parseForwardedEntry("2001:db8::1")!)).toBe("2001:db8::1");
    for (const bad of ["[2001:db8::1", "[::1]x", "1.2.3.4:", "1.2.3.4:999999", "unknown", "_hidden"]) {
      expect({ bad, parsed: parseForwardedEntry(bad) }).toEqual({ bad, parsed: undefined });
    }
  });
});

describe("limiterKey", () => {
  test("IPv4 is keyed by address, IPv6 by its /64", () => {
    expect(limiterKey(ip("192.0.2.7"))).toBe("192.0.2.7");
    expect(limiterKey(ip("::ffff:192.0.2.7"))).toBe("192.0.2.7");
    expect(limiterKey(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"))).toBe("2001:db8:1:2::/64");
    expect(limiterKey(ip("2001:db8:1:2::1"))).toBe(limiterKey(ip("2001:db8:1:2:ffff::9")));
    expect(limiterKey(ip("2001:db8:1:3::1"))).not.toBe(limiterKey(ip("2001:db8:1:2::1")));
  });
});

describe("AddressSet", () => {
  test("addresses, CIDR blocks and the loopback/private names", () => {
    const set = AddressSet.parse("10.0.0.0/8, 192.0.2.7 ,2001:db8::/32, loopback");
    for (const inside of ["10.255.1.2", "192.0.2.7", "2001:db8:ffff::1", "127.0.0.1", "127.9.9.9", "::1", "::ffff:10.1.1.1"]) {
      expect({ inside, has: set.has(ip(inside)) }).toEqual({ inside, has: true });
    }
    for (const outside of ["11.0.0.1", "192.0.2.8", "2001:db9::1", "::2", "0.0.0.0"]) {
      expect({ outside, has: set.has(ip(outside)) }).toEqual({ outside, has: false });
    }
    expect(AddressSet.parse("private").has(ip("172.31.0.1"))).toBe(true);
    expect(AddressSet.parse("private").has(ip("172.32.0.1"))).toBe(false);
    expect(AddressSet.parse("0.0.0.0/0").has(ip("8.8.8.8"))).toBe(true);
    expect(AddressSet.parse("0.0.0.0/0").has(ip("::8"))).toBe(false);
  });

  test("none and an empty list are empty; a bad entry is named", () => {
    expect(AddressSet.parse("none").isEmpty).toBe(true);
    expect(AddressSet.parse("").isEmpty).toBe(true);
    for (const bad of ["10.0.0.0/33", "::/129", "banana", "10.0.0.0/", "10.0.0.0/a", "1.2.3.4/8/1"]) {
      expect(() => AddressSet.parse(`loopback,${bad}`)).toThrow(bad);
    }
  });
});

describe("TRUST_PROXY", () => {
  test("values", () => {
    for (const off of [undefined, "", "false", "FALSE", "0", "no", "off", "none"]) expect(parseTrustProxy(off).kind).toBe("none");
    expect(parseTrustProxy("true")).toEqual({ kind: "hops", hops: 1 });
    expect(parseTrustProxy("2")).toEqual({ kind: "hops", hops: 2 });
    expect(parseTrustProxy("10.0.0.0/8,loopback").kind).toBe("addresses");
    expect(() => parseTrustProxy("99")).toThrow();
    expect(() => parseTrustProxy("maybe")).toThrow("maybe");
  });

  const resolve = (peer: string | undefined, xff: string | null, trust: string) => resolveClientAddress(peer, xff, parseTrustProxy(trust));

  test("who may send a PROXY header: none when off, anyone with hops, the listed peers with a list", () => {
    expect(trustsPeer(parseTrustProxy("false"), "127.0.0.1")).toBe(false);
    expect(trustsPeer(parseTrustProxy("true"), "203.0.113.9")).toBe(true);
    const list = parseTrustProxy("10.0.0.0/8,loopback");
    for (const yes of ["10.1.2.3", "127.0.0.1", "::1", "::ffff:10.0.0.1"]) expect(trustsPeer(list, yes)).toBe(true);
    for (const no of ["203.0.113.9", "192.168.1.1", "not an address", ""]) expect(trustsPeer(list, no)).toBe(false);
  });

  test("off: the header is ignored whatever it says", () => {
    expect(resolve("203.0.113.9", "1.1.1.1", "false")).toBe("203.0.113.9");
    expect(resolve("::ffff:203.0.113.9", null, "false")).toBe("203.0.113.9");
    expect(resolve(undefined, "1.1.1.1", "true")).toBe("unknown");
  });

  test("N hops: the entry the Nth proxy appended, never further left", () => {
    // client 1.1.1.1 spoofs "6.6.6.6"; proxy A saw 1.1.1.1; proxy B (our peer) saw A.
    const xff = "6.6.6.6, 1.1.1.1, 10.0.0.5";
    expect(resolve("10.0.0.9", xff, "true")).toBe("10.0.0.5");
    expect(resolve("10.0.0.9", xff, "2")).toBe("1.1.1.1");
    expect(resolve("10.0.0.9", "1.1.1.1", "5")).toBe("1.1.1.1"); // fewer entries than hops: the left-most
    expect(resolve("10.0.0.9", null, "true")).toBe("10.0.0.9");
    expect(resolve("10.0.0.9", "", "true")).toBe("10.0.0.9");
  });

  test("a list: walks left over trusted proxies only; the first untrusted address is the client", () => {
    const trust = "10.0.0.0/8";
    expect(resolve("10.0.0.9", "6.6.6.6, 1.1.1.1, 10.0.0.5", trust)).toBe("1.1.1.1");
    expect(resolve("203.0.113.9", "1.1.1.1", trust)).toBe("203.0.113.9"); // an untrusted peer cannot speak for anyone
    expect(resolve("10.0.0.9", "10.0.0.1, 10.0.0.2", trust)).toBe("10.0.0.1"); // all trusted: the left-most
    expect(resolve("10.0.0.9", "[2001:db8::7]:1234", trust)).toBe("2001:db8::7");
  });

  test("garbage stops the walk at the last good address", () => {
    expect(resolve("10.0.0.9", "garbage", "10.0.0.0/8")).toBe("10.0.0.9");
    expect(resolve("10.0.0.9", "1.1.1.1, garbage, 10.0.0.5", "10.0.0.0/8")).toBe("10.0.0.5");
    expect(resolve("10.0.0.9", "1.1.1.1,,", "true")).toBe("10.0.0.9");
    expect(resolve("10.0.0.9", "\u0000\uffff", "true")).toBe("10.0.0.9");
  });

  test(`a huge header is read from the right, at most ${MAX_FORWARDED_ENTRIES} entries`, () => {
    const many = Array.from({ length: 10_000 }, (_, i) => `10.0.${(i >> 8) & 255}.${i & 255}`).join(",");
    expect(resolve("10.0.0.9", `1.1.1.1,${many}`, "10.0.0.0/8")).toBe(`10.0.${(9968 >> 8) & 255}.${9968 & 255}`);
  });
});
