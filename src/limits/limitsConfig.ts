/**
 * The abuse limits' settings (read and validated with the rest of the configuration in
 * src/config/config.ts). A rate or count of 0 turns that limit off.
 */
import type { AddressSet } from "./addressSet.ts";
import type { TrustProxy } from "./trustProxy.ts";

export interface LimitsConfig {
  /** MAX_STREAMS_PER_ADDRESS: streams and long polls one client address may hold open on this node. */
  maxStreamsPerAddress: number;
  /** STREAM_RATE_PER_ADDRESS / STREAM_BURST_PER_ADDRESS: new streams a second per address, and the burst allowed. */
  streamRatePerAddress: number;
  streamBurstPerAddress: number;
  /** PUBLISH_RATE / PUBLISH_BURST: publishes a second per token (per address when tokens are not checked). */
  publishRate: number;
  publishBurst: number;
  /** MAX_HEADER_BYTES: request line plus headers. */
  maxHeaderBytes: number;
  /**
   * The same for stream requests: at least MAX_HEADER_BYTES, and enough for the longest resume a
   * multiplexed stream of MAX_MATCHES_PER_STREAM matches can send (config.ts derives it), so a browser
   * resuming by itself is never refused with a 431 it cannot survive.
   */
  maxStreamHeaderBytes: number;
  /** TRUST_PROXY: when X-Forwarded-For names the client, and which peers may send a PROXY header. */
  trustProxy: TrustProxy;
  /**
   * PROXY_PROTOCOL: a connection may start with a PROXY protocol header (v1 or v2), honoured from the
   * L4 balancers TRUST_PROXY trusts: the client it names is the client (src/proxy/). X-Forwarded-For is
   * then not read: an L4 balancer cannot have added it, so a client sent it.
   */
  proxyProtocol: boolean;
  /**
   * LIMITS_EXEMPT: client addresses the per-address limits leave alone. By default this host and the
   * private ranges: a node that sees such an address is almost always looking at its own load
   * balancer or proxy (every client behind an L4 balancer arrives from it), and limiting that address
   * would limit everyone at once.
   */
  exempt: AddressSet;
  /** LIMITER_MAX_KEYS: most addresses or tokens each rate limiter remembers. */
  maxTrackedKeys: number;
}

export const LIMIT_DEFAULTS = {
  maxStreamsPerAddress: 100,
  streamRatePerAddress: 10,
  streamBurstPerAddress: 50,
  publishRate: 100,
  publishBurst: 200,
  maxHeaderBytes: 8192,
  exempt: "loopback,private",
  maxTrackedKeys: 100_000,
} as const;

/** Bun's own parser limit on a request head unless started with --max-http-header-size. */
export const BUN_DEFAULT_MAX_HEADER_BYTES = 16_384;
