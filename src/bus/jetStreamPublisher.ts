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

/**
 * The message is larger than the NATS server takes (its `max_payload`, 1 MiB by default): the client
 * refuses to send it, so it is not stored, and sending it again cannot help. `bytes` is undefined when
 * the client refused it at send time (it does not say the size); `index` names a batch's item.
 */
export class MessageTooLarge extends Error {
  constructor(
    readonly maxBytes: number,
    readonly bytes?: number,
    readonly index?: number,
  ) {
    super(`the message${bytes === undefined ? "" : ` of ${bytes} bytes`} is larger than the NATS server takes (max_payload ${maxBytes} bytes)`);
    this.name = "MessageTooLarge";
  }
}

/** nats.js's refusal of a message past the server's max_payload (an InvalidArgumentError). */
function isPastMaxPayload(err: Error): boolean {
  return err.name === "InvalidArgumentError" && err.message.includes("max_payload");
}

const utf8 = new TextEncoder();

/** The header block of a message carrying only `Nats-Msg-Id: msgID`, in bytes, as the client encodes it. */
export function msgIdHeaderBytes(msgID: string): number {
  // "NATS/1.0\r\n", then "Nats-Msg-Id: <id>\r\n", then "\r\n".
  return HEADER_VERSION_LINE.length + MSG_ID_HEADER.length + 2 + utf8.encode(msgID).byteLength + 2 + 2;
}

/** The header JetStream dedupes on (its duplicate window). */
const MSG_ID_HEADER = "Nats-Msg-Id";
const HEADER_VERSION_LINE = "NATS/1.0\r\n";

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

  constructor(
    private readonly nc: NatsConnection,
    timeoutMs: number,
  ) {
    this.requests = new PipelinedRequests(nc, timeoutMs, {
      ...PUBLISH,
      // Thrown by the client, so never sent: not stored, whatever the reason (past max_payload, or the
      // connection closed for good).
      notSent: (err) => (isPastMaxPayload(err) ? new MessageTooLarge(this.maxPayload) : new JetStreamRejected(0, `not sent: ${err.message}`)),
    });
  }

  /** The largest message the NATS server takes, in bytes (as it said when the client connected). */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
  }

  /**
   * The bytes `data` with `msgID` would take as a message when that is more than the server takes,
   * else undefined: counted as the client counts them (the body plus the encoded headers).
   */
  oversize(data: string, msgID?: string): number | undefined {
    const max = this.maxPayload;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: short messages need no counting.
    if (data.length * 3 + (msgID === undefined ? 0 : 3 * msgID.length + MSG_ID_HEADER.length + 32) <= max) return undefined;
    const bytes = utf8.encode(data).byteLength + (msgID === undefined ? 0 : msgIdHeaderBytes(msgID));
    return bytes > max ? bytes : undefined;
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
