/**
 * MatchLog: all a match actor knows about the durable log (Mercure's `Transport`, Centrifuge's `Broker`).
 * The JetStream implementation is `eventLog.ts`; `actors/memoryMatchLog.ts` keeps events in memory and
 * can fail on cue, so the actor's failure paths are unit-tested without a NATS server.
 */
import type { Context } from "@opentelemetry/api";
import type { Json } from "../match/mergePatch.ts";

/** An event as read back from the log; `prev` is assigned by whoever reads a match in order. */
export interface LoggedEvent {
  match: string;
  seq: number;
  type: string;
  data: Json;
  state?: Json;
  ts: number;
  private?: boolean;
  /** The match's last event (see PublishInput.final). */
  final?: boolean;
}

/**
 * One page of a match's history. `through` is the highest seq the page covers: the read looked at every
 * stored message of the match up to it (messages that are not valid events are skipped, so it can be
 * past the last event), and the next page starts after it.
 */
export interface LogPage {
  events: LoggedEvent[];
  through: number;
}

export interface Follower {
  stop(): void;
  /**
   * The match's last stored seq when following began: the replay reaches at least this far, so a
   * reader is caught up once it has applied it (0 for a match with nothing stored after `afterSeq`).
   */
  readonly through: number;
}

export interface MatchLog {
  /** Sequence of the latest retained event of a match, 0 when it has none. */
  lastSeqOf(match: string): Promise<number>;
  /** Oldest sequence still retained: ids before it may have lost events to retention. */
  firstSeq(): Promise<number>;
  /**
   * The seq of the match's first stored message after `afterSeq` (an event or not), undefined when
   * none is stored: whether anything lies between an index entry and an event (actors/idleOwnedMatches.ts).
   */
  firstStoredAfter(match: string, afterSeq: number): Promise<number | undefined>;
  /**
   * Events with afterSeq < seq <= throughSeq, in order, stopping once the page holds `maxBytes` of
   * payload (at least one event), so no read holds more than about one client buffer in memory.
   */
  read(match: string, afterSeq: number, throughSeq: number, maxBytes: number): Promise<LogPage>;
  /** Replays after `afterSeq` (exclusive), then stays live, in order. */
  follow(match: string, afterSeq: number, onEvent: (e: LoggedEvent, trace: Context | undefined) => void): Promise<Follower>;
}
