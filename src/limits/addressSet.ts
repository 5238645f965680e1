/**
 * A set of address ranges written as a comma-separated list of addresses and CIDR blocks, with two
 * names for the usual ones: `loopback` and `private`. Used for TRUST_PROXY (which peers may speak for
 * a client) and LIMITS_EXEMPT (which clients the per-address limits leave alone).
 */
import { IPV4_BITS, IPV6_BITS, parseIp, type IpAddress } from "./ipAddress.ts";

interface Block {
  version: 4 | 6;
  /** The network address with its host bits cleared. */
  network: bigint;
  prefixBits: number;
}

const NAMED_RANGES: Record<string, readonly string[]> = {
  loopback: ["127.0.0.0/8", "::1/128"],
  private: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fe80::/10"],
};

function bitsOf(version: 4 | 6): number {
  return version === 4 ? IPV4_BITS : IPV6_BITS;
}

function maskOf(version: 4 | 6, prefixBits: number): bigint {
  const hostBits = BigInt(bitsOf(version) - prefixBits);
  return ((1n << BigInt(bitsOf(version))) - 1n) ^ ((1n << hostBits) - 1n);
}

function parseBlock(text: string): Block {
  const slash = text.indexOf("/");
  const ip = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (!ip) throw new Error(`"${text}" is not an address or CIDR block`);
  const max = bitsOf(ip.version);
  let prefixBits = max;
  if (slash !== -1) {
    const raw = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(raw) || Number(raw) > max) throw new Error(`"${text}" has a prefix length outside 0..${max}`);
    prefixBits = Number(raw);
  }
  return { version: ip.version, network: ip.value & maskOf(ip.version, prefixBits), prefixBits };
}

export class AddressSet {
  private constructor(private readonly blocks: readonly Block[]) {}

  static readonly EMPTY = new AddressSet([]);

  /**
   * Parses `10.0.0.0/8, 192.0.2.7, 2001:db8::/32, loopback`. Throws an Error naming the bad entry.
   * `none` alone is the empty set.
   */
  static parse(list: string): AddressSet {
    const entries = list
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (entries.length === 1 && entries[0]!.toLowerCase() === "none") return AddressSet.EMPTY;
    const blocks: Block[] = [];
    for (const entry of entries) {
      const named = NAMED_RANGES[entry.toLowerCase()];
      for (const text of named ?? [entry]) blocks.push(parseBlock(text));
    }
    return new AddressSet(blocks);
  }

  get isEmpty(): boolean {
    return this.blocks.length === 0;
  }

  has(ip: IpAddress): boolean {
    for (const b of this.blocks) {
      if (b.version === ip.version && (ip.value & maskOf(b.version, b.prefixBits)) === b.network) return true;
    }
    return false;
  }
}
