/**
 * The node-wide abuse limits, as the HTTP layer uses them: one instance per node (not per match
 * actor), so a client is counted the same whichever matches it asks for.
 *
 * Each check either passes or throws a LimitError (429 with Retry-After, 413 or 431) that the app
 * answers with the contract's JSON and counts in touchline_limited_total{limit}.
 */
import type { Server } from "bun";
import { KeyedConcurrency, type Release } from "./keyedConcurrency.ts";
import { KeyedRateLimiter } from "./keyedRateLimiter.ts";
import type { LimitsConfig } from "./limitsConfig.ts";
import { LimitError } from "./limitError.ts";
import type { LimiterName } from "../telemetry/metricLabels.ts";
import { limiterKey, parseIp, type IpAddress } from "./ipAddress.ts";
import { addressPublisher, tokenPublisher, type PublisherKey, type TokenOf } from "./publisherKey.ts";
import { requestHeadBytes } from "./requestHeadBytes.ts";
import { MAX_JSON_DEPTH, jsonDeeperThan } from "../match/jsonDepth.ts";
import { forwardedForNamesClient, resolveClientIp } from "./trustProxy.ts";

/** The release of a stream no per-address cap counts (exempt address, cap off), shared by all of them. */
const NOTHING_HELD: Release = () => {};

/** How often idle rate-limit entries are dropped. */
const LIMITER_SWEEP_MS = 5000;
/** Retry-After for a client at its open-stream cap: nothing frees a slot on a schedule, so a fixed pause. */
const STREAM_CAP_RETRY_AFTER_S = 5;
const MS_PER_SECOND = 1000;
const UNKNOWN_ADDRESS = "unknown";
/**
 * Client addresses whose limiter key and exemption are remembered (a keep-alive producer sends thousands
 * of publishes from one, and parsing and formatting it cost a few µs each time). Past this many the memo
 * starts afresh: a bound, not an LRU, since a forgotten address only costs the parsing again.
 */
const ADDRESS_MEMO_MAX = 4096;

/** What the per-address limits need of a client address. */
interface AddressFacts {
  key: string;
  exempt: boolean;
}

/** What the limits report; satisfied by the node's metrics (src/telemetry/nodeMetrics.ts). */
export interface LimitsGauges {
  limiterKeys: Record<LimiterName, { set(v: number): void }>;
  limiterEvictions: Record<LimiterName, { inc(by?: number): void }>;
}

export interface NodeLimitsOptions {
  /**
   * When this node verifies tokens: the token a request presents, so publishes are counted per token
   * (undefined: per address).
   */
  tokenOf?: TokenOf;
  gauges?: LimitsGauges;
  /** Monotonic milliseconds; tests pass their own. */
  now?: () => number;
  /**
   * With PROXY_PROTOCOL: the client the PROXY header named for the connection whose peer port is
   * `port` (src/proxy/proxyFront.ts), undefined for a connection the front did not carry.
   */
  proxiedSource?: (port: number) => string | undefined;
}

/** The peer's address as the runtime reports it, or undefined (a request not from a socket). */
type PeerLookup = Pick<Server<unknown>, "requestIP"> | null | undefined;

function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / MS_PER_SECOND)));
}

export class NodeLimits {
  private readonly openStreams: KeyedConcurrency | undefined;
  private readonly streamRate: KeyedRateLimiter | undefined;
  private readonly publishRate: KeyedRateLimiter | undefined;
  private readonly now: () => number;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private reportedEvictions: Record<LimiterName, number> = { open_streams: 0, stream_rate: 0, publish_rate: 0 };
  /** Facts of client addresses seen as socket peers, by the address's text (see ADDRESS_MEMO_MAX). */
  private readonly addressMemo = new Map<string, AddressFacts>();

  constructor(
    readonly config: LimitsConfig,
    private readonly opts: NodeLimitsOptions,
  ) {
    this.now = opts.now ?? (() => performance.now());
    if (config.maxStreamsPerAddress > 0) this.openStreams = new KeyedConcurrency(config.maxStreamsPerAddress);
    if (config.streamRatePerAddress > 0) {
      this.streamRate = new KeyedRateLimiter({ perSecond: config.streamRatePerAddress, burst: config.streamBurstPerAddress }, config.maxTrackedKeys);
    }
    if (config.publishRate > 0) {
      this.publishRate = new KeyedRateLimiter({ perSecond: config.publishRate, burst: config.publishBurst }, config.maxTrackedKeys);
    }
  }

  /** Starts the periodic sweep of idle entries (the timer does not keep the process alive). */
  start(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => this.sweep(), LIMITER_SWEEP_MS);
    this.sweepTimer.unref?.();
  }

  stop(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  sweep(): void {
    const now = this.now();
    this.streamRate?.sweep(now);
    this.publishRate?.sweep(now);
    this.refreshGauges();
  }

  /** Publishes the number of tracked keys and new evictions to the gauges (on each sweep and scrape). */
  refreshGauges(): void {
    const g = this.opts.gauges;
    if (!g) return;
    const limiters: Record<LimiterName, { size: number; evictions: number }> = {
      open_streams: { size: this.openStreams?.size ?? 0, evictions: 0 },
      stream_rate: { size: this.streamRate?.size ?? 0, evictions: this.streamRate?.evictions ?? 0 },
      publish_rate: { size: this.publishRate?.size ?? 0, evictions: this.publishRate?.evictions ?? 0 },
    };
    for (const name of Object.keys(limiters) as LimiterName[]) {
      const { size, evictions } = limiters[name];
      g.limiterKeys[name].set(size);
      const fresh = evictions - this.reportedEvictions[name];
      if (fresh > 0) g.limiterEvictions[name].inc(fresh);
      this.reportedEvictions[name] = evictions;
    }
  }

  /** The client's address per TRUST_PROXY, or undefined when the runtime cannot tell. */
  clientIp(request: Request, server: PeerLookup): IpAddress | undefined {
    const socketPeer = server?.requestIP(request) ?? undefined;
    if (this.config.proxyProtocol) {
      // The PROXY header named the client; X-Forwarded-For came from the client itself, so it is not read.
      // A connection the front did not carry (a local process on the loopback port) is its own client.
      const source = socketPeer ? this.opts.proxiedSource?.(socketPeer.port) : undefined;
      const address = source ?? socketPeer?.address;
      return address === undefined ? undefined : parseIp(address);
    }
    return resolveClientIp(socketPeer?.address, request.headers.get("x-forwarded-for"), this.config.trustProxy);
  }

  /** The key per-address limits count by, or undefined when the client is exempt. */
  private addressKey(request: Request, server: PeerLookup): string | undefined {
    const facts = this.clientFacts(request, server);
    if (!facts) return UNKNOWN_ADDRESS;
    return facts.exempt ? undefined : facts.key;
  }

  /** The client's limiter key and exemption (see clientIp), or undefined when the runtime cannot tell its address. */
  private clientFacts(request: Request, server: PeerLookup): AddressFacts | undefined {
    // The client is the socket's peer when no PROXY header and no trusted X-Forwarded-For can name another
    // (the rule clientIp applies): remembered by the peer's text.
    if (!this.config.proxyProtocol && !forwardedForNamesClient(this.config.trustProxy, request.headers.has("x-forwarded-for"))) {
      const peer = server?.requestIP(request)?.address;
      if (peer === undefined) return undefined;
      const known = this.addressMemo.get(peer);
      if (known) return known;
      const ip = parseIp(peer);
      if (!ip) return undefined;
      const facts = this.factsOf(ip);
      if (this.addressMemo.size >= ADDRESS_MEMO_MAX) this.addressMemo.clear();
      this.addressMemo.set(peer, facts);
      return facts;
    }
    const ip = this.clientIp(request, server);
    return ip && this.factsOf(ip);
  }

  private factsOf(ip: IpAddress): AddressFacts {
    return { key: limiterKey(ip), exempt: this.config.exempt.has(ip) };
  }

  /** A request head over MAX_HEADER_BYTES: the refusal to answer, else undefined. */
  /** `stream`: the request opens a stream, whose head may carry a long resume id (its own, larger line). */
  checkHeaders(request: Request, stream: boolean): LimitError | undefined {
    const bytes = requestHeadBytes(request.method, request.url, request.headers);
    const max = stream ? this.config.maxStreamHeaderBytes : this.config.maxHeaderBytes;
    if (bytes <= max) return undefined;
    return new LimitError("header_bytes", 431, "headers_too_large", `the request line and headers must be at most ${max} bytes`);
  }

  /**
   * Admits a new stream (or long poll) from this client: checks the new-stream rate, then takes one of
   * the client's open-stream slots. Returns the release to call once the stream closes, whatever the
   * reason (idempotent). Throws a LimitError (429) when either limit refuses.
   */
  admitStream(request: Request, server: PeerLookup, opts: { countRate: boolean } = { countRate: true }): Release {
    const key = this.addressKey(request, server);
    if (key === undefined) return NOTHING_HELD;
    if (opts.countRate && this.streamRate) {
      const waitMs = this.streamRate.take(key, this.now());
      if (waitMs > 0) {
        throw new LimitError("stream_rate", 429, "rate_limited", `too many new streams from your address; retry in ${retryAfterSeconds(waitMs)} s`, {
          "Retry-After": retryAfterSeconds(waitMs),
        });
      }
    }
    if (!this.openStreams) return NOTHING_HELD;
    const release = this.openStreams.tryAcquire(key);
    if (!release) {
      throw new LimitError(
        "streams_per_address",
        429,
        "rate_limited",
        `your address holds ${this.config.maxStreamsPerAddress} open streams on this node, the most allowed; close one (several matches fit on one /events stream)`,
        { "Retry-After": String(STREAM_CAP_RETRY_AFTER_S) },
      );
    }
    return release;
  }

  /** A publish body nested deeper than MAX_JSON_DEPTH: throws 400 (see jsonDepth.ts for why). */
  checkJsonDepth(body: unknown): void {
    if (jsonDeeperThan(body, MAX_JSON_DEPTH)) {
      throw new LimitError("json_depth", 400, "invalid_event", `the event may nest arrays and objects at most ${MAX_JSON_DEPTH} levels deep`);
    }
  }

  /**
   * Admits a publish: per token when tokens are verified and one is presented, else per address.
   * `events`: how many events the request publishes (a batch counts each of its items).
   */
  admitPublish(request: Request, server: PeerLookup, events = 1): void {
    if (!this.publishRate) return;
    // The token first: a publisher presenting one is counted by it, and its address is never asked for
    // (the runtime asks the kernel for a request's peer each time, a system call per publish).
    const token = this.opts.tokenOf?.(request);
    let who: PublisherKey;
    if (token !== undefined) who = tokenPublisher(token);
    else {
      const facts = this.clientFacts(request, server);
      if (facts?.exempt === true) return;
      who = addressPublisher(facts?.key ?? UNKNOWN_ADDRESS);
    }
    const waitMs = this.publishRate.take(who.key, this.now(), events);
    if (waitMs > 0) {
      throw new LimitError("publish_rate", 429, "rate_limited", `too many publishes for this ${who.kind}; retry in ${retryAfterSeconds(waitMs)} s`, {
        "Retry-After": retryAfterSeconds(waitMs),
      });
    }
  }
}
