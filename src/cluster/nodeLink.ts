/**
 * NodeLink: the node-to-node protocol, in one place. Over core NATS (nothing here is durable: the log
 * is, and every message carries what a receiver needs to notice a loss):
 *
 * - **Feed** (`<ns>.feed.<match>`): the owner of a match publishes each event it applies, with the
 *   event's `prev` (a receiver that sees a gap fills it from the log) and the owner's lease epoch (a
 *   receiver drops messages of a fenced-off owner). An owner silent for OWNER_TICK_MS while another node
 *   serves the match sends a tick naming its last seq, so a lost last event is noticed too.
 * - **Sync** (request to `<ns>.node.<owner>`): a node that starts following a match asks its owner for
 *   the state, the latest seq and the newest events. The owner answers at once or says it cannot (not
 *   the owner, not ready); a follower that gets no answer within SYNC_TIMEOUT_MS reads the log instead.
 * - **Interest** (message to `<ns>.node.<owner>`): a follower node with clients on a match tells the
 *   owner every third of ACTOR_IDLE, which keeps the owner's actor alive and its ticks going.
 *
 * Messages are msgpack (wireCodec.ts); a feed message carries the trace context of its event in NATS
 * headers when tracing is on.
 */
import type { Context } from "@opentelemetry/api";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { MatchEvent } from "../match/event.ts";
import type { Json } from "../match/mergePatch.ts";
import type { Names } from "../bus/subjects.ts";
import { decodeWire, encodeWire } from "../bus/wireCodec.ts";
import { traceContextOf, traceHeaders } from "../bus/natsTraceHeaders.ts";

/** An owner silent this long on the feed of a match another node serves sends a tick. */
export const OWNER_TICK_MS = 1000;
/** How long a follower waits for an owner's sync answer before reading the log instead. */
const SYNC_TIMEOUT_MS = 1500;
/**
 * A node alone in its ring still publishes feeds this long after another node last asked it anything
 * (a sync or interest): a node joining syncs a moment before this node's ring shows it.
 */
const PEER_QUIET_MS = 60_000;

/** A live message on a match's feed, from its owner to the other nodes. */
export type FeedMessage =
  | { kind: "event"; epoch: number; event: MatchEvent }
  /** Sent when an owner has nothing else to say for a while, so receivers notice a lost last event. */
  | { kind: "tick"; epoch: number; seq: number };

export interface SyncReply {
  epoch: number;
  /** Latest event seq the owner has applied (0 when the match has none). */
  seq: number;
  state: Record<string, Json>;
  /** The owner's newest events (oldest first), a contiguous chain ending at `seq`. */
  window: MatchEvent[];
  /** The match was published as private (subscribing then needs a token). */
  private: boolean;
  /** The match ended with its final event, `seq` (see PublishInput.final). */
  ended?: boolean;
}

type InboxRequest = { op: "sync"; match: string; after: number } | { op: "interest"; match: string };
type InboxReply = { ok: true; sync: SyncReply } | { ok: false; error: string };

/** What a node answers with: its actors, as far as this protocol needs them. */
export interface LinkHandlers {
  /** A sync for `match`: the owner's reply, or undefined if this node cannot answer as its owner now. */
  sync(match: string): Promise<SyncReply | undefined>;
  /** A follower node still serves clients of `match`. */
  interest(match: string): void;
  /** A feed message that could not be decoded (logged by the node). */
  undecodable(match: string, err: unknown): void;
}

export class NodeLink {
  private inbox: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    private readonly selfId: string,
    /** Whether trace contexts ride in feed headers. */
    private readonly traced: boolean,
  ) {}

  /** Starts answering other nodes' syncs and interest. */
  serve(handlers: LinkHandlers): void {
    this.handlers = handlers;
    this.inbox = this.nc.subscribe(this.names.nodeInbox(this.selfId), {
      callback: (err, msg) => {
        if (!err) this.onInbox(msg);
      },
    });
  }

  private handlers: LinkHandlers | undefined;
  /** When another node last sent this one a sync or interest. */
  private peerHeardAt = Number.NEGATIVE_INFINITY;

  stop(): void {
    this.inbox?.unsubscribe();
    this.inbox = undefined;
  }

  /**
   * Owner: a feed message for the other nodes; `trace` is the span it continues. A node alone in its
   * ring that no node has asked anything lately publishes nothing: nobody could read it, and it was a
   * third of the NATS work of every event on a single node. A node that joins syncs first (which
   * covers everything before its sync's answer) and is heard from before anything after it is sent.
   */
  publishFeed(match: string, msg: FeedMessage, ringSize: number, trace?: Context): void {
    if (ringSize <= 1 && performance.now() - this.peerHeardAt > PEER_QUIET_MS) return;
    this.nc.publish(this.names.feedSubject(match), encodeWire(msg), trace && this.traced ? { headers: traceHeaders(trace) } : undefined);
  }

  /** Follower: the feed of one match; returns the function that stops it. */
  subscribeFeed(match: string, onMessage: (msg: FeedMessage, trace: Context | undefined) => void): () => void {
    const sub = this.nc.subscribe(this.names.feedSubject(match), {
      callback: (err, msg) => {
        if (err) return;
        try {
          onMessage(decodeWire<FeedMessage>(msg.data), this.traced ? traceContextOf(msg.headers) : undefined);
        } catch (e) {
          this.handlers?.undecodable(match, e);
        }
      },
    });
    return () => sub.unsubscribe();
  }

  /** Follower: asks the owner for the match's state and newest events (rejects on refusal or timeout). */
  async requestSync(owner: string, match: string, after: number): Promise<SyncReply> {
    const req: InboxRequest = { op: "sync", match, after };
    const msg = await this.nc.request(this.names.nodeInbox(owner), encodeWire(req), { timeout: SYNC_TIMEOUT_MS });
    const reply = decodeWire<InboxReply>(msg.data);
    if (!reply.ok) throw new Error(`owner ${owner} refused sync: ${reply.error}`);
    return reply.sync;
  }

  /** Follower: tells the owner this node still serves clients of `match`. */
  sendInterest(owner: string, match: string): void {
    this.nc.publish(this.names.nodeInbox(owner), encodeWire({ op: "interest", match } satisfies InboxRequest));
  }

  private onInbox(msg: { data: Uint8Array; respond(data: Uint8Array): boolean }): void {
    const handlers = this.handlers;
    if (!handlers) return;
    let req: InboxRequest;
    try {
      req = decodeWire<InboxRequest>(msg.data);
    } catch {
      return;
    }
    this.peerHeardAt = performance.now();
    if (req.op === "interest") {
      handlers.interest(req.match);
      return;
    }
    void handlers.sync(req.match).then(
      (sync) => msg.respond(encodeWire((sync ? { ok: true, sync } : { ok: false, error: "not_owner" }) satisfies InboxReply)),
      () => msg.respond(encodeWire({ ok: false, error: "not_owner" } satisfies InboxReply)),
    );
  }
}
