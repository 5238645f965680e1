/**
 * Messages between the bench orchestrator and its load-generator processes: one JSON object per
 * line, commands on the generator's stdin, replies on its stdout, matched by `id`.
 */
import type { HistogramSnapshot } from "./latency-histogram.ts";

/** `count` streams on `channel`, which has already had `baseline` events published. */
export interface StreamGroup {
  channel: string;
  count: number;
  baseline: number;
}

export interface OpenCommand {
  cmd: "open";
  hosts: string[];
  /** Ports of the server (several for a cluster whose nodes are reached directly). */
  ports: number[];
  /** Request path with `{channel}` where the channel goes. */
  pathTemplate: string;
  groups: StreamGroup[];
  /** The peer replays from Last-Event-ID: reconnect with it and expect no gap. */
  resume: boolean;
  timeoutMs: number;
}

/** Zeroes counters, latencies and the CPU baseline: a scenario starts. */
export interface ResetCommand {
  cmd: "reset";
}

/** Waits until every stream on each channel has seen its final sequence number, or the timeout. */
export interface AwaitCommand {
  cmd: "await";
  finals: Record<string, number>;
  timeoutMs: number;
}

/** Cuts every stream at once and reconnects them all; replies when all are live again. */
export interface StormCommand {
  cmd: "storm";
  timeoutMs: number;
}

export interface CloseCommand {
  cmd: "close";
  timeoutMs: number;
}

export type Command = (OpenCommand | ResetCommand | AwaitCommand | StormCommand | CloseCommand) & { id: number };

export interface OpenReply {
  live: number;
  failed: number;
  /**
   * Of the failed, those the server last refused (at its cap): answered 503, or a 200 stream whose
   * event was `touchline.refused`.
   */
  refused: number;
  /** Of the refused, those refused in the stream (`touchline.refused`). */
  refusedInStream: number;
  ms: number;
  /**
   * Time to first event of the streams opened: from each one's first connection attempt to the first
   * byte of its body (Touchline's snapshot), for those that went live.
   */
  firstByte: HistogramSnapshot;
}

export interface StormReply {
  live: number;
  failed: number;
  /** From the cut until the last stream had its response head again. */
  ms: number;
}

export interface DeliveryStats {
  deliveries: number;
  latency: HistogramSnapshot;
  /** Sequence numbers never seen: gaps plus streams that ended short of the final one. */
  lost: number;
  duplicates: number;
  reordered: number;
  /** Events that were not bench ticks or belonged to another channel. */
  foreign: number;
  /** Streams the server closed or broke while we wanted them open. */
  drops: number;
  /** Streams that had not reached the final sequence number when the wait ended. */
  behind: number;
  /** Generator CPU time (user + system) since the last reset, µs. */
  cpuUs: number;
  /** ms since epoch; 0 when nothing was delivered. */
  firstDeliveryAt: number;
  lastDeliveryAt: number;
}

export interface CloseReply {
  closed: number;
}

export type ReplyBody = OpenReply | StormReply | DeliveryStats | CloseReply | Record<string, never>;

export type Reply = { id: number; ok: true; body: ReplyBody } | { id: number; ok: false; error: string };
