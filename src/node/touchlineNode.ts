/**
 * TouchlineNode: one node of the cluster, wiring NATS, the event log, membership, leases and the match
 * actors together (Centrifuge's `Node`). The HTTP layer talks only to this.
 */
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { Config } from "../config/config.ts";
import { EventLog, type AppendResult } from "../bus/eventLog.ts";
import { names, type Names } from "../bus/subjects.ts";
import { bucketWatch } from "../bus/bucketWatch.ts";
import { setUpStream } from "../bus/streamSetup.ts";
import { READER_API_TIMEOUT_MS, type OrderedReader, type ReaderContext, readOrdered } from "../bus/orderedReader.ts";
import { decodeWire, encodeWire } from "../bus/wireCodec.ts";
import { traceContextOf, traceHeaders } from "../bus/natsTraceHeaders.ts";
import { Membership, type MemberInfo } from "../cluster/membership.ts";
import { LeaseTable } from "../cluster/leases.ts";
import { MatchHub } from "../actors/matchHub.ts";
import type { MatchActor } from "../actors/matchActor.ts";
import type { FeedMessage, IndexEntry, MatchServices, SyncReply } from "../actors/services.ts";
import type { PublishInput } from "../match/event.ts";
import type { Json } from "../match/mergePatch.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { NodeMetrics } from "../telemetry/nodeMetrics.ts";
import { MatchSpans } from "../telemetry/matchSpans.ts";
import { TRACING_OFF, type TracingHandle } from "../telemetry/spans.ts";
import { MatchIndex } from "./matchIndex.ts";

/** How long a node waits for a match's owner to answer a sync before retrying. */
const SYNC_TIMEOUT_MS = 5000;
/** Owners of matches active this recently are started when the ring hands them to a node. */
const RECENT_ACTIVITY_MS = 10 * 60_000;
/** Headers of new events read per pull by discovery. */
const DISCOVERY_BATCH = 1000;

type InboxRequest = { op: "sync"; match: string; after: number } | { op: "interest"; match: string };
type InboxReply = { ok: true; sync: SyncReply } | { ok: false; error: string };

export interface NodeDeps {
  config: Config;
  logger: Logger;
  metrics: NodeMetrics;
  /** Tracing as initTracing set it up; off when omitted. */
  tracing?: TracingHandle;
  /** The URL other nodes and operators see for this node. */
  advertisedUrl: string;
}

export class TouchlineNode {
  readonly config: Config;
  readonly names: Names;
  private nc!: NatsConnection;
  private js!: JetStreamClient;
  log!: EventLog;
  membership!: Membership;
  private leases!: LeaseTable;
  hub!: MatchHub;
  index!: MatchIndex;
  private inbox: Subscription | undefined;
  private discovery: OrderedReader | undefined;
  private natsUp = false;
  private draining = false;
  private readonly logger: Logger;
  private readonly metrics: NodeMetrics;
  readonly tracing: TracingHandle;
  private readonly indexWrites = new Map<string, IndexEntry>();
  private readonly indexInFlight = new Set<string>();
  private indexKv!: KV;
  /** How JetStream readers (match followers, discovery, bucket watches) create consumers and report trouble. */
  private readers!: ReaderContext;

  constructor(private readonly deps: NodeDeps) {
    this.config = deps.config;
    this.names = names(deps.config.namespace);
    this.logger = deps.logger;
    this.metrics = deps.metrics;
    this.tracing = deps.tracing ?? TRACING_OFF;
  }

  get id(): string {
    return this.config.nodeId;
  }

  /** Ready: connected to NATS, joined the cluster, not draining. */
  get ready(): boolean {
    return this.natsUp && !this.draining && this.membership?.ring.nodes.includes(this.id) === true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  async start(): Promise<void> {
    const c = this.config;
    this.nc = await connect({
      servers: c.natsUrls,
      name: `touchline-${c.nodeId}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5000,
    });
    this.natsUp = true;
    this.metrics.natsConnected.set(1);
    this.js = jetstream(this.nc);
    const jsm = await jetstreamManager(this.nc);
    this.readers = {
      js: jetstream(this.nc, { timeout: READER_API_TIMEOUT_MS }),
      onProblem: (what, fields) => this.logger.warn(what, fields),
    };
    this.log = new EventLog(this.js, jsm, this.names, (seq, reason) =>
      this.logger.warn("skipping a stored message that is not a valid event", { seq, reason }),
      this.tracing,
      this.readers,
    );
    const retried = (err: unknown) => this.logger.warn("creating the stream or a bucket failed (timeout or a race with another node); retrying", { err: String(err) });
    await setUpStream(jsm, this.names.stream, () => this.log.ensure(c.retentionMs, c.jetstreamReplicas), retried);
    const kvm = new Kvm(this.nc);
    const replicas = c.jetstreamReplicas;
    const bucket = (name: string, ttl?: number) =>
      setUpStream(jsm, `KV_${name}`, () => kvm.create(name, { history: 1, replicas, ...(ttl ? { ttl } : {}) }), retried);
    const membersKv = await bucket(this.names.membersBucket, c.membershipTtlMs * 4);
    const ownersKv = await bucket(this.names.ownersBucket);
    this.indexKv = await bucket(this.names.indexBucket, c.retentionMs);

    // Watches that survive losing a NATS server (kv.watch() does not on a NATS cluster).
    const watch = (bucket: string) => bucketWatch(this.readers, bucket);
    this.leases = new LeaseTable(ownersKv, watch(this.names.ownersBucket), c.nodeId, this.tracing);
    await this.leases.start();
    this.index = new MatchIndex(this.indexKv, watch(this.names.indexBucket));
    await this.index.start();

    this.hub = new MatchHub(this.services(), {
      actorIdleMs: c.actorIdleMs,
      sendInterest: (owner, match) => this.nc.publish(this.names.nodeInbox(owner), encodeWire({ op: "interest", match })),
    });
    this.leases.onChange((match, lease) => {
      if (lease?.node !== this.id) this.hub.leaseChanged(match);
    });

    this.inbox = this.nc.subscribe(this.names.nodeInbox(c.nodeId), { callback: (err, msg) => {
      if (!err) this.onInbox(msg);
    } });

    const self: MemberInfo = { id: c.nodeId, url: this.deps.advertisedUrl, startedAt: Date.now() };
    this.membership = new Membership(membersKv, watch(this.names.membersBucket), self, c.membershipRenewMs, c.membershipTtlMs);
    this.membership.onChange((ring, previous) => {
      this.logger.info("membership changed", { nodes: ring.nodes, previous: previous.nodes });
      this.hub.membershipChanged();
      this.startRecentlyActiveOwned();
    });
    await this.membership.start();
    await this.membership.joined;
    await this.startDiscovery();
    void this.watchNatsStatus();
    this.logger.info("joined the cluster", { nodes: this.membership.ring.nodes });
  }

  private services(): MatchServices {
    const telemetry = {
      delivered: (n: number, ts: number) => {
        if (n === 0) return;
        this.metrics.eventsDelivered.inc(n);
        // One observation per delivery (all n share the moment of the fan-out), so _count matches delivered.
        this.metrics.deliveryLatency.observe(Math.max(0, Date.now() - ts) / 1000, n);
      },
      replay: (source: "memory" | "jetstream" | "snapshot", events: number) => {
        this.metrics.replayRequests[source].inc();
        if (events > 0) this.metrics.replayedEvents.inc(events);
      },
      ownershipMoved: (match: string, to: string) => {
        this.metrics.ownershipMoves.inc();
        this.logger.debug("ownership moved", { match, to });
      },
      warn: (msg: string, fields?: Record<string, unknown>) => this.logger.warn(msg, fields),
      debug: (msg: string, fields?: Record<string, unknown>) => this.logger.debug(msg, fields),
      spans: new MatchSpans(this.tracing),
    };
    return {
      selfId: this.config.nodeId,
      windowEvents: this.config.windowEvents,
      log: this.log,
      ownerOf: (match) => this.membership.ring.ownerOf(match),
      isLive: (node) => this.membership.ring.nodes.includes(node),
      acquireLease: (match) => this.leases.acquire(match, (n) => this.membership.ring.nodes.includes(n)),
      releaseLease: (match, epoch) => this.leases.release(match, epoch),
      leaseEpoch: (match) => this.leases.holder(match)?.epoch,
      publishFeed: (match, msg, trace) =>
        this.nc.publish(this.names.feedSubject(match), encodeWire(msg), trace ? { headers: traceHeaders(trace) } : undefined),
      subscribeFeed: (match, onMessage) => {
        const sub = this.nc.subscribe(this.names.feedSubject(match), {
          callback: (err, msg) => {
            if (err) return;
            try {
              onMessage(decodeWire<FeedMessage>(msg.data), this.tracing.enabled ? traceContextOf(msg.headers) : undefined);
            } catch (e) {
              this.logger.warn("undecodable feed message", { match, err: e });
            }
          },
        });
        return () => sub.unsubscribe();
      },
      requestSync: (owner, match, after) => this.requestSync(owner, match, after),
      readIndex: async (match) => this.index.get(match) ?? (await this.index.fetch(match)),
      writeIndex: (match, entry) => this.writeIndex(match, entry),
      telemetry,
    };
  }

  private async requestSync(owner: string, match: string, after: number): Promise<SyncReply> {
    const req: InboxRequest = { op: "sync", match, after };
    const msg = await this.nc.request(this.names.nodeInbox(owner), encodeWire(req), { timeout: SYNC_TIMEOUT_MS });
    const reply = decodeWire<InboxReply>(msg.data);
    if (!reply.ok) throw new Error(`owner ${owner} refused sync: ${reply.error}`);
    return reply.sync;
  }

  private onInbox(msg: { data: Uint8Array; respond(data: Uint8Array): boolean; reply?: string }): void {
    let req: InboxRequest;
    try {
      req = decodeWire<InboxRequest>(msg.data);
    } catch {
      return;
    }
    if (req.op === "interest") {
      if (this.membership.ring.ownerOf(req.match) === this.id) this.hub.get(req.match).noteRemoteInterest();
      return;
    }
    if (this.membership.ring.ownerOf(req.match) !== this.id || this.draining) {
      msg.respond(encodeWire({ ok: false, error: "not_owner" } satisfies InboxReply));
      return;
    }
    void this.hub
      .get(req.match)
      .sync()
      .then((sync) => {
        const reply: InboxReply = sync ? { ok: true, sync } : { ok: false, error: "not_owner" };
        msg.respond(encodeWire(reply));
      });
  }

  /**
   * Discovery: a headers-only ordered consumer over every match subject, so the owner of a match hears
   * of new events (including ones published straight to NATS) and starts its actor, which keeps the
   * match index current. It carries no payloads; each owner still reads its matches itself.
   */
  private async startDiscovery(): Promise<void> {
    this.discovery = await readOrdered(
      this.readers,
      { stream: this.names.stream, filter: this.names.eventWildcard, start: "new", batch: DISCOVERY_BATCH, headersOnly: true },
      (m) => {
        const match = this.names.matchOfSubject(m.subject);
        if (this.membership.ring.ownerOf(match) === this.id && !this.draining) this.hub.get(match);
      },
    );
  }

  /** After a ring change, start owners for recently active matches that moved here (index stays current). */
  private startRecentlyActiveOwned(): void {
    if (this.draining) return;
    const since = Date.now() - RECENT_ACTIVITY_MS;
    for (const [match, entry] of this.index.entries()) {
      if (entry.ts >= since && this.membership.ring.ownerOf(match) === this.id) this.hub.get(match);
    }
  }

  /** Coalesced: at most one write in flight per match; the newest entry wins. */
  private writeIndex(match: string, entry: IndexEntry): void {
    this.indexWrites.set(match, entry);
    if (this.indexInFlight.has(match)) return;
    const flush = (): void => {
      const next = this.indexWrites.get(match);
      if (!next) {
        this.indexInFlight.delete(match);
        return;
      }
      this.indexWrites.delete(match);
      this.indexInFlight.add(match);
      this.index.noteLocal(match, next);
      this.indexKv
        .put(match, encodeWire(next))
        .catch((err) => this.logger.warn("match index write failed", { match, err: String(err) }))
        .finally(flush);
    };
    flush();
  }

  private async watchNatsStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") {
        this.natsUp = false;
        this.metrics.natsConnected.set(0);
        this.membership.freeze();
        this.logger.warn("lost NATS connection; reconnecting");
      } else if (s.type === "reconnect") {
        this.natsUp = true;
        this.metrics.natsConnected.set(1);
        this.membership.thaw();
        this.logger.info("reconnected to NATS; resyncing matches");
        this.hub.membershipChanged();
      }
    }
  }

  // ----- API used by the HTTP layer -------------------------------------------------------------------

  async publish(match: string, input: PublishInput): Promise<AppendResult> {
    const result = await this.log.append(match, input);
    this.metrics.eventsPublished[result.duplicate ? "duplicate" : "stored"].inc();
    return result;
  }

  actor(match: string): MatchActor {
    return this.hub.get(match);
  }

  /** The match's state including every event JetStream has acknowledged so far (read-your-writes). */
  async matchState(match: string): Promise<{ seq: number; state: Record<string, Json>; private: boolean }> {
    const stored = await this.log.lastSeqOf(match);
    return this.hub.get(match).snapshot(stored);
  }

  clusterView(): { node: string; nodes: (MemberInfo & { owned?: number })[]; version: number } {
    return { node: this.id, nodes: this.membership.members(), version: this.membership.version };
  }

  leaseOf(match: string): { node: string; epoch: number } | undefined {
    return this.leases.holder(match);
  }

  ownerOf(match: string): string | undefined {
    return this.membership.ring.ownerOf(match);
  }

  refreshGauges(): void {
    this.metrics.ownedMatches.set(this.hub.ownedCount());
    this.metrics.upstreamFeeds.set(this.hub.upstreamFeeds());
  }

  /** SIGTERM, part 1: stop being ready and leave, so matches move to the others. */
  async leave(): Promise<void> {
    this.draining = true;
    this.discovery?.stop();
    await this.membership.leave();
  }

  /** Part 2: hand leases back and disconnect. */
  async close(): Promise<void> {
    this.draining = true;
    await this.hub?.stopAll();
    this.membership?.stop();
    this.leases?.stop();
    this.index?.stop();
    this.inbox?.unsubscribe();
    this.discovery?.stop();
    await this.nc?.drain().catch(() => {});
  }
}
