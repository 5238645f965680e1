/**
 * JetStreamPublisher: stores messages in JetStream pipelined, at the cost of one NATS message each.
 *
 * A JetStream publish is a NATS publish whose reply subject receives the stream's acknowledgement.
 * `js.publish` of @nats-io/jetstream makes each one a full request (a reply token, a timer, a deferred,
 * an error object with a stack, an empty header block), and since every HTTP request runs in its own
 * task, each publish also leaves in a socket write of its own. Here every acknowledgement arrives on
 * one inbox subscription, one sweep times out what JetStream never answered, and the publishes asked
 * for within one turn of the event loop leave together, in order, in one write (setImmediate): under
 * load, many producers' events share a write; alone, an event waits for nothing but the current turn.
 *
 * Order: publishes leave in the order they were asked for, on one connection, so JetStream stores
 * them in that order (the batch API and every match's order rely on it).
 */
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";

export interface StoreAck {
  seq: number;
  duplicate: boolean;
}

/** JetStream answered, but not with an acknowledgement (stream full, wrong sequence, no stream...). */
export class JetStreamRejected extends Error {
  constructor(
    readonly code: number,
    description: string,
  ) {
    super(`JetStream refused the publish (${code}): ${description}`);
    this.name = "JetStreamRejected";
  }
}

/** No acknowledgement within the timeout: the message may or may not be stored. */
export class AckTimeout extends Error {
  constructor(ms: number) {
    super(`no JetStream acknowledgement within ${ms} ms`);
    this.name = "AckTimeout";
  }
}

/** The header JetStream dedupes on (its duplicate window). */
const MSG_ID_HEADER = "Nats-Msg-Id";
/** How often unanswered publishes are checked for their timeout. */
const SWEEP_MS = 250;

interface Outgoing {
  subject: string;
  data: string | Uint8Array;
  headers: MsgHdrs | undefined;
  token: number;
}

interface Waiting {
  resolve(ack: StoreAck): void;
  reject(err: Error): void;
  deadline: number;
}

export class JetStreamPublisher {
  private readonly inbox: string;
  private readonly sub: Subscription;
  private readonly waiting = new Map<number, Waiting>();
  private queue: Outgoing[] = [];
  private flushScheduled = false;
  private nextToken = 1;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.inbox = `${createInbox()}.`;
    this.sub = nc.subscribe(`${this.inbox}*`, { callback: (err, msg) => (err ? undefined : this.onAck(msg)) });
  }

  /**
   * Stores `data` on `subject`. `msgID` makes JetStream store it at most once within its duplicate
   * window (a second one answers `duplicate`); `headers` ride along (trace context).
   */
  publish(subject: string, data: string | Uint8Array, opts: { msgID?: string; headers?: MsgHdrs } = {}): Promise<StoreAck> {
    if (this.closed) return Promise.reject(new Error("the publisher is closed"));
    let hdrs = opts.headers;
    if (opts.msgID !== undefined) {
      // A copy: the caller's headers may be shared, and they are encoded only when the turn's publishes leave.
      const own = natsHeaders();
      if (hdrs) for (const key of hdrs.keys()) for (const value of hdrs.values(key)) own.append(key, value);
      own.set(MSG_ID_HEADER, opts.msgID);
      hdrs = own;
    }
    const token = this.nextToken++;
    const acked = new Promise<StoreAck>((resolve, reject) => {
      this.waiting.set(token, { resolve, reject, deadline: Date.now() + this.timeoutMs });
    });
    this.queue.push({ subject, data, headers: hdrs, token });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    this.sweepTimer ??= setInterval(() => this.sweep(), SWEEP_MS);
    return acked;
  }

  /** Rejects everything still waiting and stops listening (the node stopping). */
  close(): void {
    this.closed = true;
    this.sub.unsubscribe();
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.queue = [];
    const err = new Error("the publisher closed before JetStream acknowledged");
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** In-flight publishes (for tests and metrics). */
  get inFlight(): number {
    return this.waiting.size;
  }

  private flush(): void {
    this.flushScheduled = false;
    const due = this.queue;
    this.queue = [];
    // All in one synchronous run: the client writes them to its socket together.
    for (const o of due) {
      try {
        this.nc.publish(o.subject, o.data, o.headers ? { reply: this.inbox + o.token, headers: o.headers } : { reply: this.inbox + o.token });
      } catch (err) {
        this.settle(o.token, undefined, err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  private onAck(msg: Msg): void {
    const token = Number(msg.subject.slice(this.inbox.length));
    if (!this.waiting.has(token)) return; // timed out already
    // No JetStream listens on the subject: the server answers a 503 status with no body.
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      this.settle(token, undefined, new JetStreamRejected(503, "no JetStream stream or server answers this subject"));
      return;
    }
    let reply: { seq?: number; duplicate?: boolean; error?: { code: number; description: string } };
    try {
      reply = JSON.parse(msg.string());
    } catch {
      this.settle(token, undefined, new JetStreamRejected(0, "an acknowledgement that is not JSON"));
      return;
    }
    if (reply.error) this.settle(token, undefined, new JetStreamRejected(reply.error.code, reply.error.description));
    else if (typeof reply.seq !== "number") this.settle(token, undefined, new JetStreamRejected(0, "an acknowledgement without a sequence"));
    else this.settle(token, { seq: reply.seq, duplicate: reply.duplicate === true });
  }

  private settle(token: number, ack: StoreAck | undefined, err?: Error): void {
    const w = this.waiting.get(token);
    if (!w) return;
    this.waiting.delete(token);
    if (ack) w.resolve(ack);
    else w.reject(err ?? new Error("publish failed"));
    if (this.waiting.size === 0) this.stopSweep();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [token, w] of this.waiting) {
      // Map order is publish order, so deadlines are in order too: stop at the first not yet due.
      if (w.deadline > now) break;
      this.waiting.delete(token);
      w.reject(new AckTimeout(this.timeoutMs));
    }
    if (this.waiting.size === 0) this.stopSweep();
  }

  private stopSweep(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }
}
