/**
 * What a match actor needs from its node: the durable log, the links to other nodes, the ownership fence
 * and telemetry. Wired in `node/`; actors depend only on this interface.
 */
import type { EventLog } from "../bus/eventLog.ts";
import type { MatchEvent } from "../match/event.ts";
import type { Json } from "../match/mergePatch.ts";
import type { Context } from "@opentelemetry/api";
import type { MatchSpans } from "../telemetry/matchSpans.ts";

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
}

export interface IndexEntry {
  seq: number;
  ts: number;
  state: Record<string, Json>;
  private?: boolean;
}

export interface ActorTelemetry {
  delivered(n: number, ts: number): void;
  replay(source: "memory" | "jetstream" | "snapshot", events: number): void;
  ownershipMoved(match: string, to: string): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  spans: MatchSpans;
}

export interface MatchServices {
  readonly selfId: string;
  readonly windowEvents: number;
  readonly log: EventLog;
  /** Current owner of a match according to this node's view of the ring. */
  ownerOf(match: string): string | undefined;
  isLive(node: string): boolean;
  acquireLease(match: string): Promise<number | undefined>;
  releaseLease(match: string, epoch: number): Promise<void>;
  /** Epoch of the lease as this node last saw it (for fencing), if any. */
  leaseEpoch(match: string): number | undefined;
  /** `trace`: the span the message continues; it travels in the message's headers. */
  publishFeed(match: string, msg: FeedMessage, trace?: Context): void;
  /** `trace` is the context the message's headers carried (undefined when untraced or tracing is off). */
  subscribeFeed(match: string, onMessage: (msg: FeedMessage, trace: Context | undefined) => void): () => void;
  requestSync(owner: string, match: string, after: number): Promise<SyncReply>;
  readIndex(match: string): Promise<IndexEntry | undefined>;
  writeIndex(match: string, entry: IndexEntry): void;
  telemetry: ActorTelemetry;
}

