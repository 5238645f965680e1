/**
 * TouchlineNode: one node of the cluster, wiring NATS, the event log, membership, leases and the match
 * actors together (Centrifuge's `Node`). The HTTP layer talks only to this.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../bus/bunTransport.ts";
import { natsConnectOptions } from "./natsConnectOptions.ts";
import { RepeatedWarning } from "../telemetry/repeatedWarning.ts";
import { type BoundedState, jsonBytes, patchWithin } from "../match/stateSize.ts";
import { applyStatePatch } from "../match/mergePatch.ts";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { Config } from "../config/config.ts";
import { EventLog, isNotFound, type AppendResult } from "../bus/eventLog.ts";
import { names, type Names } from "../bus/subjects.ts";
import { bucketWatch } from "../bus/bucketWatch.ts";
import { StreamTail } from "../bus/streamTail.ts";
import { setMaxAge, setUpStream } from "../bus/streamSetup.ts";
import { DirectGets } from "../bus/directGets.ts";
import { JetStreamPublisher } from "../bus/jetStreamPublisher.ts";
import { READER_API_TIMEOUT_MS, type ReaderContext, type StoredMessage } from "../bus/orderedReader.ts";
import { Membership, type MemberInfo, liveMembers } from "../cluster/membership.ts";
import { type SettingDifference, type SharedSettings, describeDifferences } from "../cluster/sharedSettings.ts";
import { announcedSettings } from "./announcedSettings.ts";
import { LeaseTable } from "../cluster/leases.ts";
import { NodeLink } from "../cluster/nodeLink.ts";
import { MatchHub } from "../actors/matchHub.ts";
import type { MatchActor } from "../actors/matchActor.ts";
import { WindowBudget } from "../actors/windowBudget.ts";
import type { IndexEntry, MatchServices } from "../actors/services.ts";
import { logTag, type PublishInput } from "../match/event.ts";
import type { Json } from "../match/mergePatch.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { NodeMetrics } from "../telemetry/nodeMetrics.ts";
import type { OwnershipDirection, ReplaySource } from "../telemetry/metricLabels.ts";
import { MatchSpans } from "../telemetry/matchSpans.ts";
import { TRACING_OFF, type TracingHandle } from "../telemetry/spans.ts";
import { MatchIndex } from "./matchIndex.ts";
import { notReady } from "../errors/httpError.ts";

/**
 * NATS reachability: a round trip to the server, NATS_PROBE_MS after the previous one ended, must come
 * back within NATS_PROBE_TIMEOUT_MS; NATS_PROBE_MISSES misses in a row make the node unreachable (2 to
 * 4 s). A black-holed connection shows no error for as long as the client's own pings take to fail (up
 * to ten seconds), while this node would keep answering /readyz 200 and keep clients on streams it
 * cannot feed. A probe whose timer fired more than NATS_PROBE_STALL_MS late says nothing: this node's
 * event loop was stalled (a loaded machine), and the answer may be waiting unread in its socket;
 * counting it ended every stream of a busy node for nothing.
 */
const NATS_PROBE_MS = 1000;
const NATS_PROBE_TIMEOUT_MS = 1000;
const NATS_PROBE_MISSES = 2;
const NATS_PROBE_STALL_MS = 500;
/** The client's own stale-connection check: it reconnects after this many unanswered pings. */
const NATS_PING_MS = 2000;
/** How long a publish waits for JetStream's acknowledgement before its outcome is called unknown (nats.js's default). */
const JETSTREAM_ACK_TIMEOUT_MS = 5000;
const NATS_MAX_PINGS_OUT = 2;
/** How often the node checks that the event stream and its buckets still exist (a lost store). */
const STORE_CHECK_MS = 1000;
/** Each match's index entry is written at most this often (see MatchIndex). */
const INDEX_FLUSH_MS = 1000;
/** Pause between attempts to set the stream and buckets up again after the store was lost. */
const STORE_RETRY_MS = 1000;
/**
 * Setting up, how long the event stream may take to answer its first direct get (EventLog.confirmStore:
 * one created a moment ago by another node may still be setting up its store), asked every
 * STORE_CONFIRM_PAUSE_MS. Past it the set-up fails and is tried again.
 */
const STORE_CONFIRM_MS = 5000;
const STORE_CONFIRM_PAUSE_MS = 50;
/** Owners of matches active this recently are started when the ring hands them to a node. */
const RECENT_ACTIVITY_MS = 10 * 60_000;
/**
 * Stopping while NATS is away: how long each step that needs it (leaving the membership, writing the
 * index, giving leases back) may wait before the node goes on. Each would otherwise wait out its own
 * request timeout, one after the other, past an orchestrator's grace period. Nothing is lost by going
 * on: membership and leases lapse by themselves, and an index entry not written costs the next owner a
 * longer read of the log (matchIndex.ts), never a wrong state.
 */
const STOP_WITHOUT_NATS_MS = 1000;
/** Membership renewals that keep failing log one line per this long, counting the rest. */
const RENEW_FAILURE_LOG_MS = 5000;
/** What a stored event or an index entry adds to the body or state it carries (its envelope and headers), at most. */
const STORED_MESSAGE_OVERHEAD_BYTES = 1024;

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
  private jsm!: JetStreamManager;
  /** Appends: pipelined JetStream publishes (bus/jetStreamPublisher.ts). */
  private publisher!: JetStreamPublisher;
  /** Idle matches' checks against the log: pipelined direct gets (bus/directGets.ts). */
  private directGets!: DirectGets;
  log!: EventLog;
  membership!: Membership;
  private leases!: LeaseTable;
  hub!: MatchHub;
  index!: MatchIndex;
  /** The node-to-node protocol: feeds, syncs, interest (cluster/nodeLink.ts). */
  private link!: NodeLink;
  /** This node's one live reader of the event stream (discovery included). */
  private tail!: StreamTail;
  private natsUp = false;
  /** The probe's verdict: false while round trips to NATS do not come back (see NATS_PROBE_MS). */
  private natsReachable = true;
  /** False while the stream or a bucket is missing and being set up again. */
  private storeUp = false;
  /**
   * The membership of the current set-up has shown its ring, so owners may start (before the rest of
   * the set-up is done: what the index shows meanwhile must not wait). False again when the log starts over.
   */
  private ringShown = false;
  /**
   * The event stream, as last checked, is the one `currentLogTag` names. False from a NATS disconnect
   * until the next check: a store lost meanwhile starts its sequences again, and a publish answered
   * before the node notices would carry a new sequence under the old tag (an id issued twice).
   */
  private storeVerified = false;
  /** Changes at every NATS disconnect and every start-over: an ack from across one cannot be placed. */
  private storeEpoch = 0;
  /** The newest seq published through this node, and in which store (see undeliveredPublishes). */
  private newestPublished = { seq: 0, epoch: 0 };
  /** Tags every event id with the log's incarnation (see match/event.ts). */
  private currentLogTag = "";
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  private probeMisses = 0;
  private closed = false;
  private storeTimer: ReturnType<typeof setInterval> | undefined;
  private restarting = false;
  private readonly unavailableListeners = new Set<(why: string) => void>();
  private readonly idTakenListeners = new Set<(other: MemberInfo) => void>();
  /** What stateOverflow measured of index entries that came without a bound. */
  private readonly stateBytesOfEntries = new WeakMap<IndexEntry, number>();
  /** A renewal fails every MEMBERSHIP_RENEW_MS while NATS is away or its store full: a line per RENEW_FAILURE_LOG_MS. */
  private readonly renewFailures: RepeatedWarning;
  /**
   * This process in the membership: its own name beside NODE_ID and its start, the same after the log
   * started over (a twin given the same NODE_ID is told apart by them; see Membership).
   */
  private readonly incarnation = { instance: crypto.randomUUID(), startedAt: Date.now() };
  /** The settings this node announces for every node to share. */
  private readonly settings: SharedSettings;
  private draining = false;
  private readonly logger: Logger;
  private readonly metrics: NodeMetrics;
  readonly tracing: TracingHandle;
  /** How JetStream readers (match followers, discovery, bucket watches) create consumers and report trouble. */
  private readers!: ReaderContext;

  constructor(private readonly deps: NodeDeps) {
    this.config = deps.config;
    this.names = names(deps.config.namespace);
    this.logger = deps.logger;
    this.settings = announcedSettings(this.config);
    this.renewFailures = new RepeatedWarning(this.logger, "renewing this node's membership failed; others drop it if this lasts", RENEW_FAILURE_LOG_MS);
    this.metrics = deps.metrics;
    this.tracing = deps.tracing ?? TRACING_OFF;
  }

  get id(): string {
    return this.config.nodeId;
  }

  /** Ready: NATS answers, the log and buckets exist, joined the cluster, not draining. */
  get ready(): boolean {
    return this.natsUp && this.natsReachable && this.storeUp && this.storeVerified && !this.draining && this.membership?.ring.nodes.includes(this.id) === true;
  }

  /**
   * Events published through this node that its stream tail has not handed on yet: how far the node's
   * deliveries are behind the publishes it took on (a producer keeping batches in flight sets it, since a
   * batch is acknowledged once stored, not once delivered). 0 once the tail caught up, or in a new store.
   */
  get undeliveredPublishes(): number {
    if (this.newestPublished.epoch !== this.storeEpoch || this.tail === undefined) return 0;
    return Math.max(0, this.newestPublished.seq - this.tail.position);
  }

  /** The current log incarnation's tag, part of every event id. */
  get logTag(): string {
    return this.currentLogTag;
  }

  /**
   * Called when this node can no longer serve its clients exactly (NATS unreachable, or the log
   * started over): the streams it holds should end so clients resume by id where they can be served.
   */
  onUnavailable(listener: (why: string) => void): void {
    this.unavailableListeners.add(listener);
  }

  private unavailable(why: string): void {
    for (const l of this.unavailableListeners) l(why);
  }

  /**
   * Called when another live process, there first, runs with this node's NODE_ID: this one is not
   * ready from then on, has stopped renewing its membership, and must stop without leaving (leaving
   * would delete the entry the other one renews) or handing back leases (they are the other one's too).
   */
  onNodeIdTaken(listener: (other: MemberInfo) => void): void {
    this.idTakenListeners.add(listener);
  }

  private idTaken(other: MemberInfo, yields: boolean): void {
    if (!yields) {
      this.logger.error("another process renewed this node's NODE_ID; it started later and stops itself. Every node needs its own NODE_ID", {
        nodeId: this.id,
        otherUrl: other.url,
        otherStartedAt: new Date(other.startedAt).toISOString(),
      });
      return;
    }
    this.draining = true;
    for (const l of this.idTakenListeners) l(other);
  }

  /**
   * Another node announces settings this one does not share (cluster/sharedSettings.ts): one line per
   * change. An error when publishing needs a token on one and not the other (the open one takes every
   * publish the balancer sends it), a warning otherwise (a rolling restart that changes a value passes
   * through this until its last node restarts).
   */
  private settingsDiffer(other: MemberInfo, differences: SettingDifference[]): void {
    const fields = { node: other.id, url: other.url, differences: describeDifferences(differences) };
    if (differences.length === 0) this.logger.info("another node now runs with this node's cluster settings", { node: other.id });
    else if (differences.some((d) => d.setting === "TOKENS")) {
      this.logger.error(
        "another node runs with other cluster settings: publishing needs a token on one of the two only. Every node needs the same values",
        fields,
      );
    } else this.logger.warn("another node runs with other cluster settings; every node needs the same values", fields);
  }

  /**
   * RETENTION is how long the cluster's one log keeps events: an existing log's is changed only when no
   * other live node announces another value (the last node of a rolling restart that changes it makes
   * the change), never by one node started with a stray value, which would cut every match's history
   * short for everyone (a shorter retention drops the older events at once).
   */
  private async settleRetention(keptMs: number, membersKv: KV): Promise<void> {
    const wanted = this.config.retentionMs;
    if (keptMs === wanted) return;
    let others: MemberInfo[];
    try {
      others = (await liveMembers(membersKv, this.config.membershipTtlMs)).filter((m) => m.id !== this.id);
    } catch (err) {
      this.logger.warn("the event log keeps its retention: the other nodes' settings could not be read", { keptMs, wantedMs: wanted, err: String(err) });
      return;
    }
    const holding = others.filter((m) => m.settings?.RETENTION !== undefined && m.settings.RETENTION !== wanted);
    if (holding.length > 0) {
      this.logger.warn("the event log keeps its retention: other live nodes run with another RETENTION; it changes once every node runs with this one", {
        keptMs,
        wantedMs: wanted,
        nodes: holding.map((m) => `${m.id}: ${String(m.settings?.RETENTION)}`).join(", "),
      });
      return;
    }
    try {
      await setMaxAge(this.jsm, this.names.stream, wanted);
      // The index's entries live as long as the events they point into.
      await setMaxAge(this.jsm, `KV_${this.names.indexBucket}`, wanted);
    } catch (err) {
      // Not a reason to stop: the next node to start (or this one, restarted) tries again.
      this.logger.warn("changing the event log's retention failed; it keeps its own", { keptMs, wantedMs: wanted, err: String(err) });
      return;
    }
    this.logger.info("the event log's retention changed to this node's RETENTION", { fromMs: keptMs, toMs: wanted });
  }

  /**
   * A NATS server refuses messages past its max_payload (1 MiB unless configured lower): an event whose
   * stored form passes it is refused (413 event_too_large), and a state past it could not be written to
   * the match index. Said once, at connect, when this node's settings allow more than that.
   */
  private warnIfPastMaxPayload(): void {
    const maxPayload = this.nc.info?.max_payload;
    if (maxPayload === undefined) return;
    const allowed = { MAX_BODY_BYTES: this.config.maxBodyBytes, MAX_STATE_BYTES: this.config.maxStateBytes };
    const past = Object.entries(allowed).filter(([, bytes]) => bytes + STORED_MESSAGE_OVERHEAD_BYTES > maxPayload);
    if (past.length === 0) return;
    this.logger.warn("the NATS server takes smaller messages (max_payload) than these settings allow: larger events are refused with 413 event_too_large", {
      maxPayload,
      settings: past.map(([name, bytes]) => `${name}=${bytes}`).join(", "),
    });
  }

  get isDraining(): boolean {
    return this.draining;
  }

  async start(): Promise<void> {
    const c = this.config;
    this.nc = await connectNats({
      ...natsConnectOptions(c.nats),
      name: `touchline-${c.nodeId}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: NATS_PING_MS,
      maxPingOut: NATS_MAX_PINGS_OUT,
      // No Error (with its stack) built up front for every request in case it fails: at thousands of
      // publishes and reads a second that was a tenth of the node's time.
      noAsyncTraces: true,
    });
    this.natsUp = true;
    this.warnIfPastMaxPayload();
    this.metrics.natsConnected.set(1);
    this.js = jetstream(this.nc);
    this.publisher = new JetStreamPublisher(this.nc, JETSTREAM_ACK_TIMEOUT_MS);
    this.directGets = new DirectGets(this.nc, JETSTREAM_ACK_TIMEOUT_MS);
    this.jsm = await jetstreamManager(this.nc);
    this.readers = {
      nc: this.nc,
      jsm: await jetstreamManager(this.nc, { timeout: READER_API_TIMEOUT_MS, checkAPI: false }),
      onProblem: (what, fields) => this.logger.warn(what, fields),
    };
    await this.attach();
    void this.watchNatsStatus();
    this.scheduleProbe();
    this.storeTimer = setInterval(() => void this.checkStore(), STORE_CHECK_MS);
    this.logger.info("joined the cluster", { nodes: this.membership.ring.nodes, logTag: this.currentLogTag });
  }

  /**
   * Sets up (or finds) the stream and the buckets and starts everything that lives on them: leases, the
   * index, the actors' hub, the inbox, membership and discovery. Run at start and again after the store
   * was lost, when sequences start over and every watch must start from the new beginning.
   */
  private async attach(): Promise<void> {
    const c = this.config;
    const jsm = this.jsm;
    const retried = (err: unknown) =>
      this.logger.warn("creating the stream or a bucket failed (timeout or a race with another node); retrying", { err: String(err) });
    // A message of a match nobody here listens to may be one this node owns: the hub keeps its index
    // entry current, without an actor while nobody watches (actors/idleOwnedMatches.ts).
    this.tail = new StreamTail(
      this.readers,
      this.names.stream,
      this.names.eventWildcard,
      (subject) => this.names.matchOfSubject(subject),
      (match, m) => this.unclaimedMessage(match, m),
      {
        alone: () => {
          const nodes = this.membership?.ring.nodes;
          return nodes?.length === 1 && nodes[0] === this.id;
        },
        inFlight: () => this.publisher.inFlight,
        firstStoredAfter: (afterSeq) => this.directGets.firstSeqAfter(this.names.stream, this.names.eventWildcard, afterSeq),
      },
    );
    this.log = new EventLog(
      this.js,
      this.publisher,
      this.directGets,
      jsm,
      this.names,
      (seq, reason) => this.logger.warn("skipping a stored message that is not a valid event", { seq, reason }),
      this.tracing,
      this.tail,
    );
    const keptRetentionMs = await setUpStream(jsm, this.names.stream, () => this.log.ensure(c.retentionMs, c.jetstreamReplicas), retried);
    this.currentLogTag = logTag(new Date((await jsm.streams.info(this.names.stream)).created));
    await this.confirmStore();
    const kvm = new Kvm(this.nc);
    const replicas = c.jetstreamReplicas;
    const bucket = (name: string, ttl?: number) =>
      setUpStream(jsm, `KV_${name}`, () => kvm.create(name, { history: 1, replicas, ...(ttl ? { ttl } : {}) }), retried);
    const membersKv = await bucket(this.names.membersBucket, c.membershipTtlMs * 4);
    const ownersKv = await bucket(this.names.ownersBucket);
    await bucket(this.names.indexBucket, c.retentionMs);
    await this.settleRetention(keptRetentionMs, membersKv);

    // Watches that survive losing a NATS server (kv.watch() does not on a NATS cluster).
    const watch = (bucket: string) => bucketWatch(this.readers, bucket);
    this.leases = new LeaseTable(ownersKv, watch(this.names.ownersBucket), c.nodeId, this.tracing);
    await this.leases.start();
    const indexSubject = `$KV.${this.names.indexBucket}.`;
    this.index = new MatchIndex(
      (key, value) => this.publisher.publish(indexSubject + key, value),
      watch(this.names.indexBucket),
      INDEX_FLUSH_MS,
      (failed, first) => this.logger.warn("match index writes failed", { failed, match: first.match, err: String(first.err) }),
      {
        onNewMatch: (match, entry) => {
          if (entry.ts >= Date.now() - RECENT_ACTIVITY_MS) this.keepCurrentIfOwned(match);
        },
        logTag: this.currentLogTag,
        retentionMs: c.retentionMs,
      },
      c.indexRefreshMs,
    );
    await this.index.start();

    this.hub = new MatchHub(this.services(), {
      actorIdleMs: c.actorIdleMs,
      sendInterest: (owner, match) => this.link.sendInterest(owner, match),
    });
    this.leases.onChange((shard, lease) => {
      if (lease?.node !== this.id) this.hub.leaseChanged(shard);
    });

    this.link = new NodeLink(this.nc, this.names, c.nodeId, this.tracing.enabled);
    this.link.serve({
      // Only the match's ready owner answers; a follower that gets no answer reads the log instead.
      sync: async (match) => (this.ownerOf(match) === this.id && !this.draining && this.ready ? this.hub.get(match).sync() : undefined),
      // Not while starting over: between detaching and attaching, `hub` is the stopped one, whose `get`
      // throws (an actor made there would never be swept or stopped). The follower says it again within
      // ACTOR_IDLE / 3.
      interest: (match) => {
        if (this.ready && this.ownerOf(match) === this.id) this.hub.get(match).noteRemoteInterest();
      },
      undecodable: (match, err) => this.logger.warn("undecodable feed message", { match, err: String(err) }),
    });

    const self: MemberInfo = { id: c.nodeId, url: this.deps.advertisedUrl, ...this.incarnation, settings: this.settings };
    this.membership = new Membership(membersKv, watch(this.names.membersBucket), self, c.membershipRenewMs, c.membershipTtlMs, {
      renewFailed: (err) => this.renewFailures.note({ err: String(err) }),
      idTaken: (other, yields) => this.idTaken(other, yields),
      settingsDiffer: (other, differences) => this.settingsDiffer(other, differences),
    });
    this.membership.onChange((ring, previous) => {
      this.logger.info("membership changed", { nodes: ring.nodes, previous: previous.nodes });
      this.ringShown = true;
      const moved = ring.shardsMovedFrom(previous);
      this.hub.ringChanged(moved, (shard) => ring.ownerOfShard(shard));
      // Only shards that came to this node can give it matches to keep current.
      if ([...moved].some((shard) => ring.ownerOfShard(shard) === this.id)) this.keepRecentlyActiveCurrent();
    });
    await this.membership.start();
    await this.membership.joined;
    await this.tail.start();
    this.storeUp = true;
    this.storeVerified = true;
  }

  /** Waits until the event stream answers a direct get (EventLog.confirmStore), for STORE_CONFIRM_MS at most. */
  private async confirmStore(): Promise<void> {
    const deadline = performance.now() + STORE_CONFIRM_MS;
    for (;;) {
      try {
        return await this.log.confirmStore();
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await Bun.sleep(STORE_CONFIRM_PAUSE_MS);
      }
    }
  }

  /**
   * Stops everything attach() started (not the connection). `logLost`: the log started over, and what
   * this node noted of the old one must not reach the new one.
   */
  private async detach(logLost = false): Promise<void> {
    this.tail?.stop();
    await this.hub?.stopAll();
    this.membership?.stop();
    this.leases?.stop();
    await this.index?.stop(!logLost);
    this.link?.stop();
  }

  /**
   * A round trip to NATS, bounded. Losing it marks the node not ready at once (the balancer stops
   * sending it clients) and ends its streams, which it cannot keep exact while cut off: their clients
   * resume on nodes that can. Its leases lapse with its membership and other nodes take over.
   */
  private scheduleProbe(): void {
    this.probeTimer = setTimeout(() => {
      void this.probeNats().finally(() => {
        if (!this.closed) this.scheduleProbe();
      });
    }, NATS_PROBE_MS);
  }

  private async probeNats(): Promise<void> {
    if (!this.natsUp || this.draining) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const started = performance.now();
    const answered = await Promise.race([
      this.nc.rtt().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), NATS_PROBE_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!answered && performance.now() - started > NATS_PROBE_TIMEOUT_MS + NATS_PROBE_STALL_MS) return;
    this.probeMisses = answered ? 0 : this.probeMisses + 1;
    const reachable = answered || this.probeMisses < NATS_PROBE_MISSES;
    if (reachable === this.natsReachable) return;
    this.natsReachable = reachable;
    if (!reachable) {
      this.metrics.natsConnected.set(0);
      this.membership?.freeze();
      this.logger.warn("NATS does not answer; not ready, ending this node's streams until it does", {
        timeoutMs: NATS_PROBE_TIMEOUT_MS,
        misses: NATS_PROBE_MISSES,
      });
      this.unavailable("nats_unreachable");
    } else {
      this.metrics.natsConnected.set(1);
      this.membership?.thaw();
      this.logger.info("NATS answers again; resyncing matches");
      this.hub?.reconsiderAll();
    }
  }

  /**
   * The stream and buckets must exist, and the stream must be the incarnation this node tagged its ids
   * with. NATS restarted without its store (or someone deleted the stream): everything starts over.
   * After a NATS disconnect, the first check that passes (the stream answering a direct get too, see
   * EventLog.confirmStore) makes the node ready again and has every actor resync: not before, as their
   * log reads could reach a stream that another node is recreating.
   */
  private async checkStore(): Promise<void> {
    if (!this.natsUp || !this.natsReachable || this.restarting || this.draining || !this.storeUp) return;
    const epoch = this.storeEpoch;
    const streams = [this.names.stream, ...[this.names.membersBucket, this.names.ownersBucket, this.names.indexBucket].map((b) => `KV_${b}`)];
    let lost: string | undefined;
    try {
      const infos = await Promise.all(
        streams.map((name) =>
          this.jsm.streams.info(name).catch((err: unknown) => (isNotFound(err) || isStreamNotFound(err) ? undefined : Promise.reject(err))),
        ),
      );
      const missing = infos.indexOf(undefined);
      if (missing >= 0) lost = `${streams[missing]} is missing`;
      else if (logTag(new Date(infos[0]!.created)) !== this.currentLogTag) lost = "the event stream was recreated";
      else if (!this.storeVerified) await this.log.confirmStore();
    } catch {
      return; // no answer: the probe judges reachability, and the next check asks again
    }
    if (lost) return this.startOver(lost);
    // Checked across a disconnect (or with a start-over begun meanwhile): the next check decides.
    if (this.storeVerified || epoch !== this.storeEpoch || this.restarting) return;
    this.storeVerified = true;
    this.logger.info("the event stream is the one this node knows; resyncing matches", { logTag: this.currentLogTag });
    this.hub.reconsiderAll();
  }

  /**
   * The log started over: ids of the old one are unknown from now on (clients resuming with them get a
   * snapshot), actors and watches restart from the new beginning, and clients reconnect at once.
   */
  private async startOver(why: string): Promise<void> {
    if (this.restarting) return;
    this.restarting = true;
    this.storeUp = false;
    this.ringShown = false;
    this.storeEpoch++;
    this.logger.warn("the event log or a bucket was lost; setting them up again", { why, previousLogTag: this.currentLogTag });
    this.unavailable("log_restarted");
    await this.detach(true);
    while (!this.draining) {
      try {
        await this.attach();
        break;
      } catch (err) {
        this.logger.warn("setting the log up again failed; retrying", { err: String(err) });
        await this.detach(true);
        await Bun.sleep(STORE_RETRY_MS);
      }
    }
    this.restarting = false;
    this.logger.info("log set up again", { logTag: this.currentLogTag });
  }

  private services(): MatchServices {
    const telemetry = {
      delivered: (n: number, ts: number) => {
        if (n === 0) return;
        this.metrics.eventsDelivered.inc(n);
        // One observation per delivery (all n share the moment of the fan-out), so _count matches delivered.
        this.metrics.deliveryLatency.observe(Math.max(0, Date.now() - ts) / 1000, n);
      },
      replay: (source: ReplaySource, events: number) => {
        this.metrics.replayRequests[source].inc();
        if (events > 0) this.metrics.replayedEvents.inc(events);
      },
      ownershipMoved: (match: string, direction: OwnershipDirection, to: string) => {
        this.metrics.ownershipMoves[direction].inc();
        this.logger.debug("ownership moved", { match, direction, to });
      },
      warn: (msg: string, fields?: Record<string, unknown>) => this.logger.warn(msg, fields),
      debug: (msg: string, fields?: Record<string, unknown>) => this.logger.debug(msg, fields),
      spans: new MatchSpans(this.tracing),
    };
    return {
      selfId: this.config.nodeId,
      windowEvents: this.config.windowEvents,
      windowBytes: this.config.windowBytes,
      windowBudget: new WindowBudget(this.config.windowBudgetBytes),
      historyPageBytes: this.config.clientBufferBytes,
      maxStateBytes: this.config.maxStateBytes,
      logTag: this.currentLogTag,
      log: this.log,
      ownerOf: (match) => this.membership.ring.ownerOf(match),
      acquireLease: (match) => this.leases.acquire(match, (n) => this.membership.ring.nodes.includes(n)),
      releaseLease: (match, epoch) => this.leases.release(match, epoch),
      leaseHolder: (shard) => this.leases.holderOfShard(shard),
      publishFeed: (match, msg, trace) => this.link.publishFeed(match, msg, this.membership.ring.nodes.length, trace),
      subscribeFeed: (match, onMessage) => this.link.subscribeFeed(match, onMessage),
      requestSync: (owner, match, after) => this.link.requestSync(owner, match, after),
      // The watched copy only: an entry the watch has not brought yet costs a longer read of the log,
      // never a wrong state, and asking the bucket was a round trip for every new match.
      readIndex: (match) => this.index.get(match),
      writeIndex: (match, entry) => this.index.write(match, entry),
      telemetry,
    };
  }

  /**
   * After a ring change, recently active matches that moved here are checked against the log: their last
   * owner may have stopped before writing its entry (the index stays current).
   */
  private keepRecentlyActiveCurrent(): void {
    if (this.draining) return;
    const since = Date.now() - RECENT_ACTIVITY_MS;
    for (const [match, entry] of this.index.entries()) if (entry.ts >= since) this.keepCurrentIfOwned(match);
  }

  /** A match found active elsewhere than through a request or the tail (a ring move, a new index entry). */
  private keepCurrentIfOwned(match: string): void {
    if (this.owns(match)) this.hub.keepCurrentSoon(match);
  }

  /** A stream message no actor here follows: the hub folds it if this node owns the match. */
  private unclaimedMessage(match: string, m: StoredMessage): void {
    if (!this.owns(match)) return;
    const decoded = this.log.decodeTail(m);
    if (decoded) this.hub.unclaimedEvent(decoded.event, decoded.trace);
  }

  private owns(match: string): boolean {
    return this.ringShown && !this.draining && this.membership.ring.ownerOf(match) === this.id;
  }

  private async watchNatsStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") {
        this.natsUp = false;
        this.storeVerified = false;
        this.log.suspendMessageGets();
        this.storeEpoch++;
        this.metrics.natsConnected.set(0);
        this.membership.freeze();
        this.logger.warn("lost NATS connection; reconnecting");
        this.unavailable("nats_disconnected");
      } else if (s.type === "reconnect") {
        this.natsUp = true;
        this.natsReachable = true;
        this.metrics.natsConnected.set(1);
        this.membership.thaw();
        this.logger.info("reconnected to NATS; checking the store before resyncing matches");
        void this.checkStore();
      }
    }
  }

  // ----- API used by the HTTP layer -------------------------------------------------------------------

  async publish(match: string, input: PublishInput): Promise<AppendResult> {
    const epoch = this.storeEpoch;
    const result = await this.log.append(match, input);
    this.requireSameStore(epoch);
    this.notePublished(result.seq, epoch);
    this.metrics.eventsPublished[result.duplicate ? "duplicate" : "stored"].inc();
    if (input.final) this.index.noteEndedHere(match, result.seq, input.key);
    return result;
  }

  private notePublished(seq: number, epoch: number): void {
    if (this.newestPublished.epoch !== epoch) this.newestPublished = { seq, epoch };
    else if (seq > this.newestPublished.seq) this.newestPublished.seq = seq;
  }

  /**
   * An ack that came back across a NATS disconnect or a start-over may be of the old stream or of a new
   * one, and its sequence means a different id in each: the publish's outcome is unknown.
   */
  private requireSameStore(epoch: number): void {
    if (epoch !== this.storeEpoch) throw new StoreChangedError();
  }

  /** The id of the match's final event when `key` published it through this node (a retry of it). */
  finalEventOf(match: string, key: string | undefined): number | undefined {
    const endedHere = this.index.get(match)?.endedHere;
    return key !== undefined && endedHere?.key === key ? endedHere.seq : undefined;
  }

  /**
   * Whether the match has ended, as far as this node knows: from the match index, which the match's
   * owner notes when it applies the final event (other nodes see it within the index's flush, about a
   * second), and from final events published through this node (noted at once).
   */
  isEnded(match: string): boolean {
    const entry = this.index.get(match);
    return entry?.ended === true || entry?.endedHere !== undefined;
  }

  /**
   * The first of `patches` (applied in order) that would take the match's state past MAX_STATE_BYTES,
   * by its position, and the bytes the state would have; undefined when they all fit. Judged on this node's copy of the index, up to a second
   * behind the owner: a patch that passes here and not at the owner is left out of the state there
   * (match/stateSize.ts), never lost from the stream.
   */
  stateOverflow(match: string, patches: readonly (Json | undefined)[]): { at: number; bytes: number } | undefined {
    const entry = this.index.get(match);
    let current: BoundedState = { state: entry?.state ?? {}, bytesAtMost: entry?.stateBytesAtMost };
    for (const [at, patch] of patches.entries()) {
      if (patch === undefined) continue;
      if (current.bytesAtMost === undefined && entry !== undefined) current = { ...current, bytesAtMost: this.measuredState(entry) };
      const next = patchWithin(current, patch, this.config.maxStateBytes);
      if (next === undefined) return { at, bytes: jsonBytes(applyStatePatch(current.state, patch)) };
      current = next;
    }
    return undefined;
  }

  /** An entry of another owner, through the watch, has no bound: measured once per entry. */
  private measuredState(entry: IndexEntry): number {
    let bytes = this.stateBytesOfEntries.get(entry);
    if (bytes === undefined) this.stateBytesOfEntries.set(entry, (bytes = jsonBytes(entry.state)));
    return bytes;
  }

  /**
   * Stores a batch pipelined, in order (see EventLog.appendMany). `results` are those of the items
   * stored before the first one JetStream did not confirm (`failure`), in order.
   */
  async publishBatch(items: { match: string; input: PublishInput }[]): Promise<{ results: AppendResult[]; failure?: unknown }> {
    const epoch = this.storeEpoch;
    const settled = await Promise.allSettled(this.log.appendMany(items));
    if (epoch !== this.storeEpoch) return { results: [], failure: new StoreChangedError() };
    const results: AppendResult[] = [];
    for (const [i, s] of settled.entries()) {
      if (s.status === "rejected") return { results, failure: s.reason };
      results.push(s.value);
      this.notePublished(s.value.seq, epoch);
      this.metrics.eventsPublished[s.value.duplicate ? "duplicate" : "stored"].inc();
      if (items[i]!.input.final) this.index.noteEndedHere(items[i]!.match, s.value.seq, items[i]!.input.key);
    }
    return { results };
  }

  /**
   * The match's actor on this node. Refused (503, retry) while the node starts over: between detaching
   * and attaching, `hub` is the stopped one, and a request that was already past its readiness check
   * (waiting on auth, a body) must not start an actor there.
   */
  actor(match: string): MatchActor {
    if (this.hub.isStopped) throw notReady("this node is starting over (its log or NATS connection changed)");
    return this.hub.get(match);
  }

  /**
   * The match's state including every event JetStream has acknowledged so far (read-your-writes), or
   * undefined when the match has no events within retention (answered without starting an actor).
   */
  async matchState(match: string): Promise<{ seq: number; state: Record<string, Json>; private: boolean; ended: boolean } | undefined> {
    const stored = await this.log.lastSeqOf(match);
    if (stored === 0 && this.index.get(match) === undefined) return undefined;
    const s = await this.actor(match).snapshot(stored);
    return s.seq === 0 ? undefined : s;
  }

  /** Matches with events within retention, most recently active first (see MatchIndex.list). */
  listMatches(
    limit: number,
    cursor: string | undefined,
    visible: (match: string, entry: IndexEntry) => boolean,
  ): { items: [string, IndexEntry][]; next: string | null } {
    return this.index.list(limit, cursor, visible);
  }

  /** This node's view of the cluster, for `GET /cluster`. */
  clusterView(): {
    node: string;
    nodes: MemberInfo[];
    /** Members announcing settings that differ from this node's (cluster/sharedSettings.ts). */
    settingsDiffer: { node: string; differences: SettingDifference[] }[];
    version: number;
    ready: boolean;
    owned: number;
    upstreamFeeds: number;
  } {
    return {
      node: this.id,
      nodes: this.membership.members(),
      settingsDiffer: this.membership.settingsDiffering(),
      version: this.membership.version,
      ready: this.ready,
      owned: this.hub.ownedCount(),
      upstreamFeeds: this.hub.upstreamFeeds(),
    };
  }

  leaseOf(match: string): { node: string; epoch: number } | undefined {
    return this.leases.holder(match);
  }

  ownerOf(match: string): string | undefined {
    return this.membership.ring.ownerOf(match);
  }

  refreshGauges(): void {
    this.metrics.nodesWithOtherSettings.set(this.membership.settingsDiffering().length);
    this.metrics.ownedMatches.set(this.hub.ownedCount());
    this.metrics.upstreamFeeds.set(this.hub.upstreamFeeds());
  }

  /** SIGTERM, part 1: stop being ready and leave, so matches move to the others. */
  async leave(): Promise<void> {
    this.draining = true;
    await this.unlessNatsAway(this.membership.leave());
  }

  /** Part 2: hand leases back and disconnect. */
  async close(): Promise<void> {
    this.draining = true;
    this.closed = true;
    clearTimeout(this.probeTimer);
    clearInterval(this.storeTimer);
    await this.unlessNatsAway(this.detach());
    this.publisher?.close();
    this.directGets?.close();
    // Draining flushes to the server first: without one it would wait for a reconnect.
    if (this.natsAway) await this.nc?.close().catch(() => {});
    else await this.nc?.drain().catch(() => {});
  }

  /** Disconnected, or connected to a server that does not answer (see NATS_PROBE_MS). */
  private get natsAway(): boolean {
    return !this.natsUp || !this.natsReachable;
  }

  /** `step`, or, while NATS is away, at most STOP_WITHOUT_NATS_MS of it (it goes on in the background). */
  private async unlessNatsAway(step: Promise<unknown>): Promise<void> {
    if (!this.natsAway) {
      await step;
      return;
    }
    step.catch(() => {});
    await Promise.race([step, Bun.sleep(STOP_WITHOUT_NATS_MS)]);
  }
}

/** "stream not found" as JetStream's API answers it (err_code 10059), whatever the client makes of it. */
function isStreamNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return (
    e?.code === 10059 ||
    String(e?.message ?? "")
      .toLowerCase()
      .includes("stream not found")
  );
}

/** NATS was lost (or the log started over) while a publish waited for its ack: which stream stored it is unknown. */
class StoreChangedError extends Error {
  constructor() {
    super("the NATS connection or the event log changed before the publish was acknowledged; its outcome is unknown");
    this.name = "StoreChangedError";
  }
}
