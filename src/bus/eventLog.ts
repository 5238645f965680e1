/**
 * EventLog: the durable, ordered log of match events, hiding JetStream behind a small interface (in the
 * spirit of Mercure's Transport). One stream, one subject per match, so JetStream orders each match's
 * events and its stream sequence is the event id everywhere.
 */
import {
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  RetentionPolicy,
  StorageType,
  type StreamInfo,
} from "@nats-io/jetstream";
import { millis, nanos, type MsgHdrs } from "@nats-io/transport-node";
import { type Context, SpanKind, context, trace } from "@opentelemetry/api";
import type { Names } from "./subjects.ts";
import type { Json } from "../match/mergePatch.ts";
import type { PublishInput } from "../match/event.ts";
import { EVENT_TYPE, isReservedType } from "../match/event.ts";
import { MAX_JSON_DEPTH, jsonDeeperThan } from "../match/jsonDepth.ts";
import { ATTR, MESSAGING_OP_SEND, MESSAGING_SYSTEM_NATS, SPAN } from "../telemetry/spanNames.ts";
import { TRACING_OFF, type TracingHandle, endWhenSettled } from "../telemetry/spans.ts";
import { traceContextOf, traceHeaders } from "./natsTraceHeaders.ts";
import { CONSUMER_INACTIVE_MS, type StoredMessage } from "./orderedReader.ts";
import type { StreamTail, TailListener } from "./streamTail.ts";
import { type JetStreamPublisher, MessageTooLarge } from "./jetStreamPublisher.ts";
import type { DirectGets } from "./directGets.ts";
import { Slots } from "./slots.ts";
import type { Follower, LogPage, LoggedEvent, MatchLog } from "./matchLog.ts";

export type { Follower, LoggedEvent } from "./matchLog.ts";

export interface AppendResult {
  seq: number;
  duplicate: boolean;
}

/** JetStream keeps message ids for dedupe this long (the contract promises at least 2 minutes). */
const DEDUPE_WINDOW_MS = 2 * 60_000;
const FETCH_BATCH = 500;
/** History reads (each a short-lived consumer) a node runs at once; the rest wait their turn. */
const READS_IN_FLIGHT = 16;
/** Follows starting at once (each a couple of requests): thousands of owners starting take turns. */
const FOLLOWS_STARTING = 32;
/**
 * Checks of idle matches in flight at once (firstStoredAfter): each a small pipelined request, so more
 * than follows, yet their answers come back in bursts the node handles in one turn.
 */
const CHECKS_IN_FLIGHT = 128;
/** Payload bytes per history page while a follower catches up to the tail. */
const FOLLOW_PAGE_BYTES = 1_048_576;
const FETCH_EXPIRES_MS = 1000;
/**
 * A page read gives up after this long. Its consumer is nats.js's ordered one, which never ends a fetch
 * on missed heartbeats (it recreates itself and pulls again) and retries a failed re-creation with
 * backoff, up to 30 times, without limit once a message came: against a server that stopped answering
 * (paused, black-holed, restarting) the fetch outlasts any caller. A follower's mailbox awaits its
 * page reads, so such a read would leave the match's streams on heartbeats until the fetch ended.
 * Given up, the read throws and the caller's retry (logged, with backoff) takes over.
 */
export const PAGE_READ_DEADLINE_MS = 10_000;
const FIRST_SEQ_CACHE_MS = 1000;
const utf8 = new TextDecoder();

/** A history page not read within PAGE_READ_DEADLINE_MS (the server did not answer in time). */
export class LogReadTimeout extends Error {
  constructor(ms: number) {
    super(`no history page from JetStream within ${ms} ms`);
    this.name = "LogReadTimeout";
  }
}

/**
 * `lastSeqOf` asked before the stream answered a direct get (see EventLog.messageGetsOpen): the store may
 * be being created, and the message get that would answer could crash nats-server 2.9.10. Retried by
 * the caller like any failed read.
 */
export class StoreNotConfirmed extends Error {
  constructor() {
    super("the event stream has not answered since NATS came back; its last seqs are not asked yet");
    this.name = "StoreNotConfirmed";
  }
}

/** A seq past any stream's end: a direct get from it answers "not found" at once, from any stream that answers. */
const PAST_THE_END = Number.MAX_SAFE_INTEGER - 1;

export type BadMessageHandler = (seq: number, reason: string) => void;

export class EventLog implements MatchLog {
  private firstSeqCache = { value: 1, at: 0 };
  private readonly readSlots = new Slots(READS_IN_FLIGHT);
  private readonly followSlots = new Slots(FOLLOWS_STARTING);
  private readonly checkSlots = new Slots(CHECKS_IN_FLIGHT);
  /**
   * Whether `lastSeqOf` may send its STREAM.MSG.GET. nats-server 2.9.10 registers a stream being created
   * before it sets up the stream's store, and a message get arriving in between dereferences the missing
   * store: the server panics and exits (a scratch loop, one client creating streams while another asks
   * for their last messages, crashed it within 3 creations; direct gets, 40 creations, never). A store
   * lost and recreated by one node while another node's actors asked for their last seqs hit it in the
   * store-loss scenario. Closed until `confirmStore` has seen the stream answer a direct get (a stream
   * answers those only once its store is set up), and again by `suspendMessageGets` (NATS disconnected:
   * the store may be gone and about to be recreated).
   */
  private messageGetsOpen = false;
  /** Counts suspensions: a confirmation answered across one (asked before it) opens nothing. */
  private suspensions = 0;

  constructor(
    private readonly js: JetStreamClient,
    /** Where appends go: pipelined publishes sharing socket writes (jetStreamPublisher.ts). */
    private readonly publisher: JetStreamPublisher,
    /** Where firstStoredAfter's checks go: pipelined direct gets answering only a seq. */
    private readonly directGets: DirectGets,
    private readonly jsm: JetStreamManager,
    private readonly names: Names,
    private readonly onBadMessage: BadMessageHandler,
    private readonly tracing: TracingHandle = TRACING_OFF,
    /** The node's live reader of the whole stream, which followers listen to (streamTail.ts). */
    private readonly tail?: StreamTail,
  ) {}

  /**
   * Creates the stream with `retentionMs`, or turns direct gets on for one an older node made without
   * them; answers the retention the stream keeps, in ms. An existing stream's retention is the
   * cluster's: only the node changes it (TouchlineNode.settleRetention, once every live node asks for
   * it). `replicas` copies are kept on a NATS cluster so the log survives losing a server (a replica
   * count cannot be changed by a node on a running stream: that is an operator's `nats stream edit`).
   */
  async ensure(retentionMs: number, replicas = 1): Promise<number> {
    const config = {
      name: this.names.stream,
      subjects: [this.names.eventWildcard],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(retentionMs),
      duplicate_window: nanos(Math.min(DEDUPE_WINDOW_MS, retentionMs)),
      allow_direct: true,
      num_replicas: replicas,
    };
    let info: StreamInfo;
    try {
      info = await this.jsm.streams.info(this.names.stream);
    } catch {
      await this.jsm.streams.add(config);
      return retentionMs;
    }
    // Direct gets are how the node learns the store is set up (confirmStore) and checks idle matches.
    if (info.config.allow_direct !== true) await this.jsm.streams.update(this.names.stream, { ...info.config, allow_direct: true });
    return millis(info.config.max_age);
  }

  /**
   * Stores one event; resolves only once JetStream has acknowledged it. Traced, the append is a
   * `jetstream.store` span (child of the active one, the HTTP request's) whose context rides in the
   * stored message's headers, so the owner's reader continues the same trace.
   */
  async append(match: string, input: PublishInput): Promise<AppendResult> {
    const payload = JSON.stringify(storedPayload(input));
    const subject = this.names.eventSubject(match);
    const msgID = input.key ? { msgID: dedupeId(match, input.key) } : {};
    // Past the server's max_payload the client would refuse it when sent (so would it with trace headers added: MessageTooLarge then too).
    const bytes = this.publisher.oversize(payload, msgID.msgID);
    if (bytes !== undefined) throw new MessageTooLarge(this.publisher.maxPayload, bytes);
    if (!this.tracing.enabled) return this.store(subject, payload, msgID);

    const span = this.tracing.tracer.startSpan(SPAN.store, {
      kind: SpanKind.PRODUCER,
      attributes: {
        [ATTR.messagingSystem]: MESSAGING_SYSTEM_NATS,
        [ATTR.messagingOperation]: MESSAGING_OP_SEND,
        [ATTR.messagingDestination]: subject,
        [ATTR.match]: match,
        [ATTR.eventType]: input.type,
      },
    });
    const headers = traceHeaders(trace.setSpan(context.active(), span));
    return endWhenSettled(
      span,
      this.store(subject, payload, { ...msgID, headers }).then((result) => {
        span.setAttribute(ATTR.eventSeq, result.seq);
        span.setAttribute(ATTR.duplicate, result.duplicate);
        return result;
      }),
    );
  }

  /**
   * Stores several events, pipelined: every publish is sent at once, in order, on the one connection,
   * so JetStream stores them in that order (order per match kept) and the acks come back together.
   * One promise per item, settling like `append`'s. Untraced: the batch's request span covers them.
   */
  appendMany(items: { match: string; input: PublishInput }[]): Promise<AppendResult>[] {
    const messages = items.map(({ match, input }) => ({
      subject: this.names.eventSubject(match),
      text: JSON.stringify(storedPayload(input)),
      msgID: input.key === undefined ? undefined : dedupeId(match, input.key),
    }));
    // Every item is checked before any is sent: a batch with one item past max_payload stores nothing.
    for (const [index, m] of messages.entries()) {
      const bytes = this.publisher.oversize(m.text, m.msgID);
      if (bytes !== undefined) throw new MessageTooLarge(this.publisher.maxPayload, bytes, index);
    }
    return messages.map((m) => this.store(m.subject, m.text, m.msgID === undefined ? {} : { msgID: m.msgID }));
  }

  /** Stores one payload; the tail learns of it from the acknowledgement (StreamTail.ownStored), in acknowledgement order. */
  private store(subject: string, text: string, options: { msgID?: string; headers?: MsgHdrs }): Promise<AppendResult> {
    const stored = this.publisher.publish(subject, text, options);
    const tail = this.tail;
    if (tail === undefined) return stored;
    return stored.then((ack) => {
      tail.ownStored(subject, ack.seq, ack.duplicate, text, options.headers);
      return ack;
    });
  }

  /**
   * The match's first stored message after `afterSeq` (a direct get, answered without a consumer), or
   * undefined when none is; `event` is undefined for a message that is not a valid event.
   */
  private async firstAfter(match: string, afterSeq: number): Promise<{ seq: number; event: LoggedEvent | undefined } | undefined> {
    const m = await this.jsm.direct.getMessage(this.names.stream, { seq: afterSeq + 1, next_by_subj: this.names.eventSubject(match) });
    if (!m) return undefined;
    return { seq: m.seq, event: this.decode(match, m.seq, m.data, Date.parse(m.timestamp)) };
  }

  /** See MatchLog.firstStoredAfter: one pipelined direct get (directGets.ts), CHECKS_IN_FLIGHT at a time. */
  firstStoredAfter(match: string, afterSeq: number): Promise<number | undefined> {
    return this.checkSlots.run(() => this.directGets.firstSeqAfter(this.names.stream, this.names.eventSubject(match), afterSeq));
  }

  /** Oldest sequence still retained: ids before it may have lost events to retention. */
  async firstSeq(): Promise<number> {
    const now = Date.now();
    if (now - this.firstSeqCache.at > FIRST_SEQ_CACHE_MS) {
      const info = await this.jsm.streams.info(this.names.stream);
      this.firstSeqCache = { value: info.state.first_seq, at: now };
    }
    return this.firstSeqCache.value;
  }

  /**
   * Resolves once the event stream answers a direct get, so its store is set up and message gets are
   * safe (see messageGetsOpen), which it then allows. Rejects when the stream does not answer (missing,
   * still being created, or NATS away): the caller checks again later.
   */
  async confirmStore(): Promise<void> {
    const asked = this.suspensions;
    await this.directGets.firstSeqAfter(this.names.stream, this.names.eventWildcard, PAST_THE_END);
    if (asked !== this.suspensions) throw new StoreNotConfirmed();
    this.messageGetsOpen = true;
  }

  /** NATS went away: the store may come back empty and be recreated; no message gets until confirmStore. */
  suspendMessageGets(): void {
    this.messageGetsOpen = false;
    this.suspensions++;
  }

  /** Sequence of the latest retained event of a match, 0 when it has none. */
  async lastSeqOf(match: string): Promise<number> {
    if (!this.messageGetsOpen) throw new StoreNotConfirmed();
    try {
      const m = await this.jsm.streams.getMessage(this.names.stream, { last_by_subj: this.names.eventSubject(match) });
      return m?.seq ?? 0;
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
  }

  /**
   * Follows one match from `afterSeq` (exclusive): replays what is stored, then stays live. Live events
   * come from the node's shared tail (streamTail.ts), so following costs no consumer of its own: the
   * listener is registered first, history is read in pages up to the tail's position, then what the
   * tail brought meanwhile is handed on, skipping what the history already gave.
   */
  async follow(match: string, afterSeq: number, onEvent: (e: LoggedEvent, trace: Context | undefined) => void): Promise<Follower> {
    const tail = this.tail;
    if (!tail) throw new Error("EventLog.follow needs the node's stream tail");
    const f = new TailFollower(tail, match, afterSeq, onEvent, this.decodeTail);
    tail.listen(match, f);
    try {
      // Every event of the match up to the tail's position is at most its last stored one: a match
      // already caught up reads nothing (owners of thousands of quiet matches start without reads).
      // Asked after listening: whatever the tail handed on before is stored by now, so it is read here.
      // Most owners start for a match with one event to read (one the tail has just revealed): one
      // direct get of the first message after the cursor instead of a consumer's three round trips.
      // (A replica answering has a prefix of the stream: a message past `through` means none before
      // it; no answer is not trusted, the read below then looks.)
      const { last: stored, first } = await this.followSlots.run(async () => {
        const last = await this.lastSeqOf(match);
        return { last, first: afterSeq < Math.min(tail.position, last) ? await this.firstAfter(match, afterSeq) : undefined };
      });
      f.through = Math.max(afterSeq, stored);
      const through = Math.min(tail.position, stored);
      let cursor = afterSeq;
      if (cursor < through && first) {
        if (first.seq > through) cursor = through;
        else {
          f.replayed(first.seq, first.event);
          cursor = first.seq;
        }
      }
      while (cursor < through && !f.stopped) {
        const page = await this.read(match, cursor, through, FOLLOW_PAGE_BYTES);
        for (const e of page.events) f.replayed(e.seq, e);
        if (page.through <= cursor) break;
        cursor = page.through;
      }
    } catch (err) {
      f.stop();
      throw err;
    }
    f.goLive();
    return f;
  }

  /** A tail message as an event with its trace (headers are parsed only when tracing is on); shared by every follower. */
  readonly decodeTail = (m: StoredMessage): { event: LoggedEvent; trace: Context | undefined } | undefined => {
    const event = this.decode(this.names.matchOfSubject(m.subject), m.seq, m.text ?? m.data, m.timestampNanos / 1e6);
    return event && { event, trace: this.tracing.enabled ? traceContextOf(m.headers) : undefined };
  };

  /**
   * One page of a match's history (see MatchLog.read). Each page is read through its own short-lived
   * consumer, deleted once the page is in: a far-behind resume holds one page in memory, never the
   * whole range.
   */
  async read(match: string, afterSeq: number, throughSeq: number, maxBytes: number): Promise<LogPage> {
    if (throughSeq <= afterSeq) return { events: [], through: afterSeq };
    // Each read is a consumer on the server while it lasts: a node starting thousands of owners at
    // once reads a few at a time.
    await this.readSlots.take();
    try {
      return await this.readPage(match, afterSeq, throughSeq, maxBytes);
    } finally {
      this.readSlots.give();
    }
  }

  private async readPage(match: string, afterSeq: number, throughSeq: number, maxBytes: number): Promise<LogPage> {
    let fetching: ConsumerMessages | undefined;
    let expired = false;
    const deadline = setTimeout(() => {
      expired = true;
      fetching?.stop(new LogReadTimeout(PAGE_READ_DEADLINE_MS));
    }, PAGE_READ_DEADLINE_MS);
    try {
      const consumer = await this.js.consumers.get(this.names.stream, {
        filter_subjects: this.names.eventSubject(match),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: afterSeq + 1,
        // In milliseconds here: this client converts it to nanoseconds itself (passing nanos made
        // consumers outlive their readers by months).
        inactive_threshold: CONSUMER_INACTIVE_MS,
      });
      try {
        return await this.fetchPage(consumer, afterSeq, throughSeq, maxBytes, (batch) => {
          if (expired) {
            batch.stop();
            throw new LogReadTimeout(PAGE_READ_DEADLINE_MS);
          }
          fetching = batch;
        });
      } finally {
        // Not waited for once the read gave up: the server that did not answer it would hold the failure too.
        const deleted = consumer.delete().catch(() => {});
        if (!expired) await deleted;
      }
    } finally {
      clearTimeout(deadline);
    }
  }

  /** Fetches a page's messages; `started` sees each fetch before it is read (the deadline stops it). */
  private async fetchPage(
    consumer: Consumer,
    afterSeq: number,
    throughSeq: number,
    maxBytes: number,
    started: (batch: ConsumerMessages) => void,
  ): Promise<LogPage> {
    const events: LoggedEvent[] = [];
    let through = afterSeq;
    let bytes = 0;
    let done = false;
    while (!done) {
      const batch = await consumer.fetch({ max_messages: FETCH_BATCH, expires: FETCH_EXPIRES_MS });
      started(batch);
      let got = 0;
      for await (const m of batch) {
        got++;
        if (m.seq > throughSeq) {
          done = true;
          break;
        }
        through = m.seq;
        const e = this.decodeJs(m);
        if (e) {
          events.push(e);
          bytes += m.data.byteLength;
        }
        // pending 0: nothing more is stored for this match right now.
        if (m.seq >= throughSeq || m.info.pending === 0 || bytes >= maxBytes) {
          done = true;
          break;
        }
      }
      if (got === 0) done = true;
    }
    // Nothing more stored up to throughSeq: the page covers the whole range.
    if (bytes < maxBytes) through = throughSeq;
    return { events, through };
  }

  private decodeJs(m: JsMsg): LoggedEvent | undefined {
    return this.decode(this.names.matchOfSubject(m.subject), m.seq, m.data, m.info.timestampNanos / 1e6);
  }

  /**
   * Parses a stored payload. Producers may publish straight to NATS, so anything can be here: a message
   * that is not a valid event is reported once and skipped identically by every reader, so it never
   * corrupts a stream (it simply has no id a subscriber ever sees).
   */
  decode(match: string, seq: number, payload: Uint8Array | string, storedMs: number): LoggedEvent | undefined {
    let body: unknown;
    try {
      body = JSON.parse(typeof payload === "string" ? payload : utf8.decode(payload));
    } catch {
      this.onBadMessage(seq, "payload is not JSON");
      return undefined;
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      this.onBadMessage(seq, "payload is not a JSON object");
      return undefined;
    }
    // The HTTP door refuses these; a producer publishing straight to NATS is held to the same bound.
    if (jsonDeeperThan(body, MAX_JSON_DEPTH)) {
      this.onBadMessage(seq, `payload nests deeper than ${MAX_JSON_DEPTH} levels`);
      return undefined;
    }
    const b = body as Record<string, unknown>;
    if (typeof b.type !== "string" || !EVENT_TYPE.test(b.type) || isReservedType(b.type)) {
      this.onBadMessage(seq, "type is missing, invalid or reserved");
      return undefined;
    }
    const state = b.state;
    const event: LoggedEvent = {
      match,
      seq,
      type: b.type,
      data: (b.data ?? null) as Json,
      ts: typeof b.ts === "number" && Number.isFinite(b.ts) ? b.ts : Math.round(storedMs),
    };
    if (typeof state === "object" && state !== null && !Array.isArray(state)) event.state = state as Json;
    if (b.private === true) event.private = true;
    if (b.final === true) event.final = true;
    return event;
  }
}

/** What is stored for an event: the payload documented for producers publishing straight to NATS. */
function storedPayload(input: PublishInput): Record<string, unknown> {
  const payload: Record<string, unknown> = { type: input.type, data: input.data, ts: input.ts ?? Date.now() };
  if (input.state !== undefined) payload.state = input.state;
  if (input.private) payload.private = true;
  if (input.final) payload.final = true;
  return payload;
}

/** JetStream's message id for a producer's idempotency key: keys are per match. */
function dedupeId(match: string, key: string): string {
  return `${match}:${key}`;
}

export function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; api_error?: { code?: number } };
  return (
    e?.api_error?.code === 404 ||
    String(e?.message ?? "")
      .toLowerCase()
      .includes("no message found") ||
    e?.code === 404 ||
    e?.code === "404"
  );
}

/**
 * One match followed off the stream tail (EventLog.follow): what history replays comes first; tail
 * messages arriving meanwhile are held, then handed on skipping what the history already gave. A
 * class rather than closures: an owner of an idle match keeps one of these, and 20,000 of them add up.
 */
class TailFollower implements TailListener, Follower {
  through = 0;
  stopped = false;
  /** The last seq handed on. */
  private last: number;
  /** Tail messages that came while the history was read; undefined once live. */
  private held: StoredMessage[] | undefined = [];

  constructor(
    private readonly tail: StreamTail,
    private readonly match: string,
    afterSeq: number,
    private readonly onEvent: (e: LoggedEvent, trace: Context | undefined) => void,
    private readonly decode: (m: StoredMessage) => { event: LoggedEvent; trace: Context | undefined } | undefined,
  ) {
    this.last = afterSeq;
  }

  onTailMessage(m: StoredMessage): void {
    if (this.held) this.held.push(m);
    else this.hand(m);
  }

  /** A history event (undefined: a stored message that is not a valid event, skipped). */
  replayed(seq: number, event: LoggedEvent | undefined): void {
    if (this.stopped || seq <= this.last) return;
    this.last = seq;
    if (event) this.onEvent(event, undefined);
  }

  goLive(): void {
    const waiting = this.held ?? [];
    this.held = undefined;
    for (const m of waiting) this.hand(m);
  }

  stop(): void {
    this.stopped = true;
    this.held = undefined;
    this.tail.unlisten(this.match, this);
  }

  private hand(m: StoredMessage): void {
    if (this.stopped || m.seq <= this.last) return;
    this.last = m.seq;
    const decoded = this.decode(m);
    if (decoded) this.onEvent(decoded.event, decoded.trace);
  }
}
