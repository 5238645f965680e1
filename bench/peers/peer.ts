/**
 * A server under test, started and stopped by the bench. Every peer offers the same semantics:
 * channels with broadcast to all their subscribers, subscribe = a long-lived GET answering
 * text/event-stream, publish = an HTTP POST of a JSON body. Adding a peer means implementing this.
 */

export interface SubscribeTarget {
  /** Ports to connect to, on every loopback address the bench spreads streams over; streams are dealt over them in turn. */
  ports: number[];
  /** Request path with `{channel}` where the channel goes. */
  pathTemplate: string;
}

export interface Peer {
  /** Short id used on the command line (`--peers=`) and in results. */
  readonly name: string;
  /** Shown in the results table. */
  readonly title: string;
  /** Replays what a client missed when it reconnects with Last-Event-ID. */
  readonly resumes: boolean;
  /** Server processes that hold streams (1, or a cluster's node count): sizes the hold scenario. */
  readonly nodes: number;
  /** Streams one node accepts before it refuses with 503, or null for peers with no such cap. */
  readonly streamCap: number | null;
  start(): Promise<void>;
  subscribeTarget(): SubscribeTarget;
  /** Resolves once the peer has accepted the event (2xx). */
  publish(channel: string, seq: number): Promise<void>;
  /** Every server-side process whose memory and CPU count as the peer's (brokers included). */
  pids(): number[];
  stop(): Promise<void>;
}
