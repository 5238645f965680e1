/**
 * Which address a request comes from. The socket's peer is the truth unless TRUST_PROXY says the peer
 * is a proxy of ours: then `X-Forwarded-For` is read from the right (each proxy appends the address it
 * saw), stepping over trusted hops only, so a client cannot pick its own address by sending the header.
 *
 * TRUST_PROXY:
 * - unset, `false`, `0`: the header is ignored (a node facing clients directly, or behind an L4 balancer);
 * - `true` or a number N: the nearest N hops are proxies, whatever their address;
 * - a list of addresses, CIDR blocks, `loopback`, `private`: peers in it are proxies.
 */
import { AddressSet } from "./addressSet.ts";
import { formatIp, parseForwardedEntry, parseIp, type IpAddress } from "./ipAddress.ts";

export type TrustProxy = { kind: "none" } | { kind: "hops"; hops: number } | { kind: "addresses"; proxies: AddressSet };

/** More hops than any real chain of proxies has; a bigger number is a typo. */
const MAX_TRUSTED_HOPS = 16;
/** Entries of X-Forwarded-For looked at, from the right: past this the rest is ignored. */
export const MAX_FORWARDED_ENTRIES = 32;

const OFF = new Set(["", "false", "0", "no", "off"]);
const ONE_HOP = new Set(["true", "yes", "on"]);

/** Parses TRUST_PROXY; throws an Error saying what is wrong. */
export function parseTrustProxy(raw: string | undefined): TrustProxy {
  const text = (raw ?? "").trim();
  const lower = text.toLowerCase();
  if (OFF.has(lower)) return { kind: "none" };
  if (ONE_HOP.has(lower)) return { kind: "hops", hops: 1 };
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops > MAX_TRUSTED_HOPS) throw new Error(`at most ${MAX_TRUSTED_HOPS} hops, got ${hops}`);
    return { kind: "hops", hops };
  }
  const proxies = AddressSet.parse(text);
  if (proxies.isEmpty) return { kind: "none" };
  return { kind: "addresses", proxies };
}

/** The entries of (possibly several, comma-joined) X-Forwarded-For headers, right-most last, at most the last MAX_FORWARDED_ENTRIES. */
function forwardedEntries(header: string): string[] {
  const all = header.split(",");
  return all.length > MAX_FORWARDED_ENTRIES ? all.slice(-MAX_FORWARDED_ENTRIES) : all;
}

/**
 * The client's address: `peer` is the socket's remote address (undefined if the runtime could not
 * tell), `forwardedFor` the X-Forwarded-For header. An entry that is not an address ends the walk:
 * the last good address before it is used.
 */
export function resolveClientIp(peer: string | undefined, forwardedFor: string | null, trust: TrustProxy): IpAddress | undefined {
  const peerIp = peer === undefined ? undefined : parseIp(peer);
  if (!peerIp || forwardedFor === null || !forwardedForNamesClient(trust, true)) return peerIp;
  const entries = forwardedEntries(forwardedFor);
  let current = peerIp;
  let index = entries.length;
  let stepsLeft = trust.kind === "hops" ? trust.hops : Number.POSITIVE_INFINITY;
  while (stepsLeft > 0 && index > 0 && (trust.kind === "hops" || (trust.kind === "addresses" && trust.proxies.has(current)))) {
    const next = parseForwardedEntry(entries[index - 1]!);
    if (!next) break;
    current = next;
    index--;
    stepsLeft--;
  }
  return current;
}

/**
 * Whether an X-Forwarded-For header (`present` or not) can name a client other than the socket's peer:
 * only when some proxy is trusted. Otherwise the peer is the client (resolveClientIp returns it as is).
 */
export function forwardedForNamesClient(trust: TrustProxy, present: boolean): boolean {
  return present && trust.kind !== "none";
}

/** Whether `peer` (a socket's remote address) is one of our proxies: who may send a PROXY header. */
export function trustsPeer(trust: TrustProxy, peer: string): boolean {
  if (trust.kind === "none") return false;
  if (trust.kind === "hops") return true;
  const ip = parseIp(peer);
  return ip !== undefined && trust.proxies.has(ip);
}

/** Same as resolveClientIp, formatted; `unknown` when even the peer is not known. */
export function resolveClientAddress(peer: string | undefined, forwardedFor: string | null, trust: TrustProxy): string {
  const ip = resolveClientIp(peer, forwardedFor, trust);
  return ip ? formatIp(ip) : "unknown";
}
