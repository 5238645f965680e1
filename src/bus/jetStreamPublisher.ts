/**
 * JetStreamPublisher: stores messages in JetStream pipelined, at the cost of one NATS message each.
 *
 * A JetStream publish is a NATS publish whose reply subject receives the stream's acknowledgement.
 * `js.publish` of @nats-io/jetstream makes each one a full request (a reply token, a timer, a deferred,
 * an error object with a stack, an empty header block), and since every HTTP request runs in its own
 * task, each publish also leaves in a socket write of its own. Here publishes are pipelined requests
 * (pipelinedRequests.ts): every acknowledgement arrives on one inbox, and the publishes asked for
 * within one turn leave together, in order, in one write, so JetStream stores them in that order (the
 * batch API and every match's order rely on it).
 */
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { PipelinedRequests, type RequestKind } from "./pipelinedRequests.ts";

export interface StoreAck {
  seq: number;
  duplicate: boolean;
}

/** JetStream answered, but not with an acknowledgement (stream full, wrong sequence, no stream...). */
export class JetStreamRejected extends Error {
  constructor(
    readonly code: number,
    readonly description: string,
    /**
     * The answer says the message was not stored: an error from the stream, or no stream listening. An
     * answer that cannot be read says nothing either way.
     */
    readonly notStored = true,
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

/** What a JetStream publish's answer means. */
const PUBLISH: RequestKind<StoreAck> = {
  answer(msg: Msg): StoreAck {
    // No JetStream listens on the subject: the server answers a 503 status with no body.
    if (msg.data.length === 0 && msg.headers?.code === 503) throw new JetStreamRejected(503, "no JetStream stream or server answers this subject");
    let reply: { seq?: number; duplicate?: boolean; error?: { code: number; description: string } };
    try {
      reply = JSON.parse(msg.string());
    } catch {
      throw new JetStreamRejected(0, "an acknowledgement that is not JSON", false);
    }
    if (reply.error) throw new JetStreamRejected(reply.error.code, reply.error.description);
    if (typeof reply.seq !== "number") throw new JetStreamRejected(0, "an acknowledgement without a sequence", false);
    return { seq: reply.seq, duplicate: reply.duplicate === true };
  },
  timedOut: (ms) => new AckTimeout(ms),
  closed: { after: "the publisher is closed", waiting: "the publisher closed before JetStream acknowledged" },
};

export class JetStreamPublisher {
  private readonly requests: PipelinedRequests<StoreAck>;

  constructor(nc: NatsConnection, timeoutMs: number) {
    this.requests = new PipelinedRequests(nc, timeoutMs, PUBLISH);
  }

  /**
   * Stores `data` on `subject`. `msgID` makes JetStream store it at most once within its duplicate
   * window (a second one answers `duplicate`); `headers` ride along (trace context).
   */
  publish(subject: string, data: string | Uint8Array, opts: { msgID?: string; headers?: MsgHdrs } = {}): Promise<StoreAck> {
    let hdrs = opts.headers;
    if (opts.msgID !== undefined) {
      // A copy: the caller's headers may be shared, and they are encoded only when the turn's publishes leave.
      const own = natsHeaders();
      if (hdrs) for (const key of hdrs.keys()) for (const value of hdrs.values(key)) own.append(key, value);
      own.set(MSG_ID_HEADER, opts.msgID);
      hdrs = own;
    }
    return this.requests.request(subject, data, hdrs);
  }

  /** Rejects everything still waiting and stops listening (the node stopping). */
  close(): void {
    this.requests.close();
  }

  /** In-flight publishes (for tests and metrics). */
  get inFlight(): number {
    return this.requests.inFlight;
  }
}
