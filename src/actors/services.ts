/**
 * What a match actor needs from its node: the durable log, the links to other nodes, the ownership fence
 * and telemetry. Wired in `node/`; actors depend only on this interface.
 */
import type { Json } from "../match/mergePatch.ts";
import type { Context } from "@opentelemetry/api";
import type { MatchSpans } from "../telemetry/matchSpans.ts";
import type { OwnershipDirection, ReplaySource } from "../telemetry/metricLabels.ts";
import type { WindowBudget } from "./windowBudget.ts";
import type { MatchLog } from "../bus/matchLog.ts";
import type { FeedMessage, SyncReply } from "../cluster/nodeLink.ts";

export type { FeedMessage, SyncReply } from "../cluster/nodeLink.ts";

export interface IndexEntry {
  seq: number;
  ts: number;
  state: Record<string, Json>;
  private?: boolean;
  /** The match ended: `seq` is its final event. */
  ended?: boolean;
  /**
   * The match's final event, when it was published through this node: known ended here at once (a
   * publish after it answers 409), and its key makes a retry of it a duplicate. The entry's own seq and
   * state stay those of the last event its owner applied: the final event's state patch is not known
   * here until then. Only in this node's copy, never written.
   */
  endedHere?: { seq: number; key?: string };
  /** At least the state's JSON bytes, as its owner here bounded them (match/stateSize.ts). Only in this node's copy, never written. */
  stateBytesAtMost?: number;
}

export interface ActorTelemetry {
  delivered(n: number, ts: number): void;
  replay(source: ReplaySource, events: number): void;
  /** `in`: this node became the match's owner; `out`: it stopped being (to: the ring's owner now, if known). */
  ownershipMoved(match: string, direction: OwnershipDirection, to: string): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  spans: MatchSpans;
}

export interface MatchServices {
  readonly selfId: string;
  readonly windowEvents: number;
  /** Bytes of events each match window holds at most (WINDOW_BYTES). */
  readonly windowBytes: number;
  /** The bytes all windows of the node share (WINDOW_BUDGET_BYTES). */
  readonly windowBudget: WindowBudget;
  /** Payload bytes one history read may hold: about one client buffer (invariant 6 of docs/design.md). */
  readonly historyPageBytes: number;
  /** MAX_STATE_BYTES: a state patch that would make the state larger is not applied (match/stateSize.ts). */
  readonly maxStateBytes: number;
  /** Names the log's incarnation in every event id (see formatEventId in match/event.ts); fixed for an actor's life. */
  readonly logTag: string;
  readonly log: MatchLog;
  /** Current owner of a match according to this node's view of the ring. */
  ownerOf(match: string): string | undefined;
  acquireLease(match: string): Promise<number | undefined>;
  releaseLease(match: string, epoch: number): Promise<void>;
  /** The lease of a match's shard (`MatchActor.shard`) as this node last saw it (for fencing), if anyone holds it. */
  leaseHolder(shard: number): { node: string; epoch: number } | undefined;
  /** `trace`: the span the message continues; it travels in the message's headers. */
  publishFeed(match: string, msg: FeedMessage, trace?: Context): void;
  /** `trace` is the context the message's headers carried (undefined when untraced or tracing is off). */
  subscribeFeed(match: string, onMessage: (msg: FeedMessage, trace: Context | undefined) => void): () => void;
  requestSync(owner: string, match: string, after: number): Promise<SyncReply>;
  /** This node's copy of the match's index entry (node/matchIndex.ts). */
  readIndex(match: string): IndexEntry | undefined;
  writeIndex(match: string, entry: IndexEntry): void;
  telemetry: ActorTelemetry;
}
