/**
 * OrderedReader: an ordered JetStream consumer that outlives the NATS server it was placed on.
 *
 * Ordered consumers live on one server (R1), picked among the stream's peers. When that server dies,
 * nats.js 3.4 does not recover them on nats-server 2.9: its "does the consumer still exist" check times
 * out instead of answering "not found", so it retries forever and the reader is silent until the server
 * is back (measured on a three-server cluster: no message for 40 s, kv.watch likewise). So the reader
 * keeps its own watch: while healthy the server sends a message or an idle heartbeat at least every
 * READER_HEARTBEAT_MS; after MISSED_HEARTBEATS of silence the consumer is replaced by a new ordered
 * consumer starting right after the last message handed on, which the server places on a live peer.
 * Replacing a healthy consumer by mistake costs one consumer creation and loses nothing.
 *
 * The consumer pushes (a deliver subject, flow control, no acks), and the reader checks its delivery
 * sequence itself: a message missing (lost with a connection, say) is a gap, and a gap replaces the
 * consumer the same way. Pushed, not pulled: every stored event reaches its owner through the stream
 * tail, and the nats-server spends less on a push delivery than on serving a waiting pull (per isolated
 * publish 0.70× the CPU, bench/publishCost.ts; the many-channels scenario's server CPU per delivery,
 * node and nats-server together, 0.66-1.06× in four interleaved pairs, median 0.80×). Flow control
 * bounds what is in flight by bytes (the server's window, a few MB) where the pull's batch did.
 *
 * Creating the replacement can fail for a while: requests sent while the cluster elects a new meta
 * leader go unanswered, and nats-server 2.9 may place the new consumer on the dead server (it picks
 * among the stream's peers), which never answers either. So readers create consumers through a
 * JetStream manager with a short API timeout (READER_API_TIMEOUT_MS) and retry.
 */
import { AckPolicy, DeliverPolicy, type ConsumerConfig, type JetStreamManager } from "@nats-io/jetstream";
import { createInbox, Empty, nanos, nuid, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { type DeliveryReply, parseDeliveryReply } from "./deliveryReply.ts";

/** Consumer creation gives up after this (the library's default is 5 s) and is retried: see above. */
export const READER_API_TIMEOUT_MS = 2000;
/** While no message is due, the server sends an idle heartbeat this often. */
const READER_HEARTBEAT_MS = 2000;
/** Silence of this many heartbeats means the consumer is gone (its server died). */
const MISSED_HEARTBEATS = 2;
/** Pause between attempts to create a replacement while JetStream elects new leaders. */
const REPLACE_RETRY_MS = 500;
/**
 * A consumer left behind (its reader crashed, or it lived on a dead server) vanishes after this: this
 * module's push consumers and the log's history reads (eventLog.ts) alike.
 */
export const CONSUMER_INACTIVE_MS = 10_000;
/** The status code of idle heartbeats and flow-control requests. */
const STATUS_CONTROL = 100;
/** Headers of an idle heartbeat: the last delivery sequence sent, and where a stalled flow control waits. */
const LAST_CONSUMER_SEQ_HEADER = "Nats-Last-Consumer";
const CONSUMER_STALLED_HEADER = "Nats-Consumer-Stalled";

/** Where a reader starts: after a stream sequence (0: from the start), only new messages, or the last per subject. */
export type ReaderStart = { after: number } | "new" | "last_per_subject";

export interface OrderedReaderSpec {
  stream: string;
  filter: string;
  start: ReaderStart;
  headersOnly?: boolean;
}

/** A message of the stream, as a reader hands it on. */
export interface StoredMessage {
  readonly subject: string;
  /** Its stream sequence. */
  readonly seq: number;
  readonly data: Uint8Array;
  /** The payload as text, when the reader has it so (this node's own stores): spares encoding it and decoding it back. */
  readonly text?: string;
  readonly headers: MsgHdrs | undefined;
  /** When the stream stored it, in nanoseconds since the epoch. */
  readonly timestampNanos: number;
  /** Messages the consumer still had to deliver after this one when it was sent. */
  readonly pending: number;
}

/** A pushed message; its headers are parsed only when read (most readers never do). */
class DeliveredMessage implements StoredMessage {
  constructor(
    private readonly msg: Msg,
    private readonly info: DeliveryReply,
  ) {}

  get subject(): string {
    return this.msg.subject;
  }
  get seq(): number {
    return this.info.streamSeq;
  }
  get data(): Uint8Array {
    return this.msg.data;
  }
  get headers(): MsgHdrs | undefined {
    return this.msg.headers;
  }
  get timestampNanos(): number {
    return this.info.timestampNanos;
  }
  get pending(): number {
    return this.info.pending;
  }
}

export interface OrderedReader {
  stop(): void;
  /** The stream sequence of the last message handed on (for "new", the stream's last at start). */
  position(): number;
}

export type ReaderProblem = (what: string, fields: Record<string, unknown>) => void;

/** What readers run on: the connection, a JetStream manager made with `timeout: READER_API_TIMEOUT_MS`, and where to report. */
export interface ReaderContext {
  nc: NatsConnection;
  jsm: JetStreamManager;
  onProblem: ReaderProblem;
}

/** One consumer of a reader, while it is the current one. */
interface Delivery {
  sub: Subscription;
  name: string;
}

/**
 * Starts reading; resolves once the first consumer exists (rejects if it cannot be created). Every
 * message is handed to `onMessage` once, in stream order, across replacements.
 */
export async function readOrdered(context: ReaderContext, spec: OrderedReaderSpec, onMessage: (m: StoredMessage) => void): Promise<OrderedReader> {
  const { nc, jsm, onProblem } = context;
  // `lastSeq` is the cursor once `positioned`: "new" learns it from its first consumer, and
  // "last_per_subject" from its first message (its messages come in stream order too).
  let lastSeq = typeof spec.start === "object" ? spec.start.after : 0;
  let positioned = typeof spec.start === "object";
  let generation = 0;
  let stopped = false;
  let current: Delivery | undefined;
  let lastSignalAt = Date.now();
  let retry: ReturnType<typeof setTimeout> | undefined;
  const namePrefix = `reader_${nuid.next()}`;

  const policy = (): Partial<ConsumerConfig> => {
    if (positioned) return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 };
    return { deliver_policy: spec.start === "new" ? DeliverPolicy.New : DeliverPolicy.LastPerSubject };
  };

  const retire = (d: Delivery | undefined): void => {
    if (!d) return;
    d.sub.unsubscribe();
    // Best effort: a consumer whose server is gone cannot be deleted, and vanishes when inactive.
    void jsm.consumers.delete(spec.stream, d.name).catch(() => {});
  };

  const open = async (): Promise<void> => {
    const mine = ++generation;
    const name = `${namePrefix}_${mine}`;
    const inbox = createInbox();
    // The delivery sequence of the last message of this consumer: each must be the one after it.
    let delivered = 0;
    const onDelivery = (msg: Msg): void => {
      if (stopped || mine !== generation) return;
      lastSignalAt = Date.now();
      // Messages come under their own subject; the server's own (idle heartbeats, flow control, errors) under the inbox.
      if (msg.subject === inbox) {
        onControl(msg);
        return;
      }
      const info = parseDeliveryReply(msg.reply);
      if (!info) {
        onProblem("a delivered message without a JetStream reply subject; skipped", { stream: spec.stream, subject: msg.subject, reply: msg.reply });
        return;
      }
      if (info.deliverySeq !== delivered + 1) {
        replace(`delivery ${info.deliverySeq} came after ${delivered}`);
        return;
      }
      delivered = info.deliverySeq;
      if (positioned && info.streamSeq <= lastSeq) return;
      lastSeq = info.streamSeq;
      positioned = true;
      const m = new DeliveredMessage(msg, info);
      // A listener's bug must not end the reader (nor the connection's other subscriptions).
      try {
        onMessage(m);
      } catch (err) {
        onProblem("a message's handler failed", { stream: spec.stream, filter: spec.filter, seq: m.seq, err: String(err) });
      }
    };
    const onControl = (msg: Msg): void => {
      const status = msg.headers?.code ?? 0;
      if (status !== STATUS_CONTROL) {
        replace(`the consumer answered ${status} ${msg.headers?.description ?? ""}`.trim());
        return;
      }
      // A flow-control request carries a reply; an idle heartbeat says what was last sent.
      if (msg.reply) {
        msg.respond(Empty);
        return;
      }
      const stalled = msg.headers?.get(CONSUMER_STALLED_HEADER);
      if (stalled) nc.publish(stalled, Empty);
      const lastSent = Number(msg.headers?.get(LAST_CONSUMER_SEQ_HEADER) || 0);
      if (lastSent > delivered) replace(`a heartbeat says ${lastSent} were sent, ${delivered} came`);
    };
    // Subscribed before the consumer exists, so its first message finds someone listening.
    const sub = nc.subscribe(inbox, { callback: (err, msg) => (err ? undefined : onDelivery(msg)) });
    const config: Partial<ConsumerConfig> = {
      name,
      deliver_subject: inbox,
      filter_subject: spec.filter,
      ...policy(),
      ack_policy: AckPolicy.None,
      max_deliver: 1,
      flow_control: true,
      idle_heartbeat: nanos(READER_HEARTBEAT_MS),
      inactive_threshold: nanos(CONSUMER_INACTIVE_MS),
      num_replicas: 1,
      mem_storage: true,
      ...(spec.headersOnly ? { headers_only: true } : {}),
    };
    let created: Awaited<ReturnType<JetStreamManager["consumers"]["add"]>>;
    try {
      created = await jsm.consumers.add(spec.stream, config);
    } catch (err) {
      sub.unsubscribe();
      throw err;
    }
    if (stopped || mine !== generation) {
      retire({ sub, name });
      return;
    }
    if (!positioned && spec.start === "new") {
      lastSeq = created.delivered.stream_seq;
      positioned = true;
    }
    current = { sub, name };
    lastSignalAt = Date.now();
  };

  const replace = (why: string): void => {
    if (stopped) return;
    onProblem("ordered consumer silent or out of order; replacing it", { stream: spec.stream, filter: spec.filter, afterSeq: lastSeq, why });
    generation++;
    retire(current);
    current = undefined;
    const attempt = (): void => {
      if (stopped) return;
      open().then(
        () => undefined,
        (err) => {
          onProblem("could not replace an ordered consumer; retrying", { stream: spec.stream, filter: spec.filter, err: String(err) });
          retry = setTimeout(attempt, REPLACE_RETRY_MS);
        },
      );
    };
    attempt();
  };

  await open();
  const watchdog = setInterval(() => {
    if (current && Date.now() - lastSignalAt > MISSED_HEARTBEATS * READER_HEARTBEAT_MS) replace("no message or heartbeat");
  }, READER_HEARTBEAT_MS);
  return {
    stop: () => {
      stopped = true;
      clearInterval(watchdog);
      clearTimeout(retry);
      retire(current);
      current = undefined;
    },
    position: () => lastSeq,
  };
}
