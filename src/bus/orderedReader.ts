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
 * Creating the replacement can fail for a while: requests sent while the cluster elects a new meta
 * leader go unanswered, and nats-server 2.9 may place the new consumer on the dead server (it picks
 * among the stream's peers), which never answers either. So readers create consumers through a
 * JetStream client with a short API timeout (READER_API_TIMEOUT_MS) and retry.
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg, type OrderedConsumerOptions } from "@nats-io/jetstream";

/** Consumer creation gives up after this (the library's default is 5 s) and is retried: see above. */
export const READER_API_TIMEOUT_MS = 2000;
/** While a pull waits, the server sends an idle heartbeat this often. */
const READER_HEARTBEAT_MS = 2000;
/** Silence of this many heartbeats means the consumer is gone (its server died). */
const MISSED_HEARTBEATS = 2;
/** A pull lasts this long before the client renews it (the library's default is 30 s). */
const PULL_EXPIRES_MS = 10_000;
/** Pause between attempts to create a replacement while JetStream elects new leaders. */
const REPLACE_RETRY_MS = 500;
/**
 * A consumer left behind (its reader crashed, or it lived on a dead server) vanishes after this. In
 * milliseconds: the client converts it to nanoseconds itself.
 */
const CONSUMER_INACTIVE_MS = 10_000;

/** Where a reader starts: after a stream sequence (0: from the start), only new messages, or the last per subject. */
export type ReaderStart = { after: number } | "new" | "last_per_subject";

export interface OrderedReaderSpec {
  stream: string;
  filter: string;
  start: ReaderStart;
  /** Messages per pull. */
  batch: number;
  headersOnly?: boolean;
}

export interface OrderedReader {
  stop(): void;
  /** The stream sequence of the last message handed on (for "new", the stream's last at start). */
  position(): number;
}

export type ReaderProblem = (what: string, fields: Record<string, unknown>) => void;

/** What readers run on: a JetStream client made with `timeout: READER_API_TIMEOUT_MS`, and where to report. */
export interface ReaderContext {
  js: JetStreamClient;
  onProblem: ReaderProblem;
}

/**
 * Starts reading; resolves once the first consumer exists (rejects if it cannot be created). Every
 * message is handed to `onMessage` once, in stream order, across replacements.
 */
export async function readOrdered(context: ReaderContext, spec: OrderedReaderSpec, onMessage: (m: JsMsg) => void): Promise<OrderedReader> {
  const { js, onProblem } = context;
  // `lastSeq` is the cursor once `positioned`: "new" learns it from its first consumer, and
  // "last_per_subject" from its first message (its messages come in stream order too).
  let lastSeq = typeof spec.start === "object" ? spec.start.after : 0;
  let positioned = typeof spec.start === "object";
  let generation = 0;
  let stopped = false;
  let current: ConsumerMessages | undefined;
  let lastSignalAt = Date.now();
  let retry: ReturnType<typeof setTimeout> | undefined;

  const policy = (): Partial<OrderedConsumerOptions> => {
    if (positioned) return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 };
    return { deliver_policy: spec.start === "new" ? DeliverPolicy.New : DeliverPolicy.LastPerSubject };
  };

  const open = async (): Promise<void> => {
    const mine = ++generation;
    const consumer = await js.consumers.get(spec.stream, {
      filter_subjects: spec.filter,
      ...policy(),
      inactive_threshold: CONSUMER_INACTIVE_MS,
      ...(spec.headersOnly ? { headers_only: true } : {}),
    });
    if (!positioned && spec.start === "new") {
      lastSeq = (await consumer.info(true)).delivered.stream_seq;
      positioned = true;
    }
    const messages = await consumer.consume({ max_messages: spec.batch, expires: PULL_EXPIRES_MS, idle_heartbeat: READER_HEARTBEAT_MS });
    if (stopped || mine !== generation) {
      void messages.close().catch(() => {});
      return;
    }
    current = messages;
    lastSignalAt = Date.now();
    void (async () => {
      for await (const s of messages.status()) {
        if (s.type === "heartbeat" || s.type === "debug" || s.type === "discard" || s.type === "ordered_consumer_recreated") lastSignalAt = Date.now();
      }
    })();
    void (async () => {
      for await (const m of messages) {
        if (stopped || mine !== generation) break;
        lastSignalAt = Date.now();
        if (positioned && m.seq <= lastSeq) continue;
        lastSeq = m.seq;
        positioned = true;
        onMessage(m);
      }
    })().catch((err) => onProblem("ordered reader ended", { stream: spec.stream, filter: spec.filter, err: String(err) }));
  };

  const replace = (): void => {
    if (stopped) return;
    onProblem("ordered consumer silent; replacing it", { stream: spec.stream, filter: spec.filter, afterSeq: lastSeq });
    generation++;
    void current?.close().catch(() => {});
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
    if (current && Date.now() - lastSignalAt > MISSED_HEARTBEATS * READER_HEARTBEAT_MS) replace();
  }, READER_HEARTBEAT_MS);
  return {
    stop: () => {
      stopped = true;
      clearInterval(watchdog);
      clearTimeout(retry);
      void current?.close().catch(() => {});
    },
    position: () => lastSeq,
  };
}
