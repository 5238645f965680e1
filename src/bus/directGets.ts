/**
 * DirectGets: JetStream direct gets of "the seq of a subject's first message after a seq", pipelined
 * on one inbox (pipelinedRequests.ts). An owned match kept without an actor is checked by one of these
 * (actors/idleOwnedMatches.ts), and 20,000 new matches make 20,000 of them: through
 * `jsm.direct.getMessage` each cost a request object, a timer, an error with a stack and a socket
 * write of its own, the largest part of the node's busy stretches while it took them on.
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { PipelinedRequests, type RequestKind } from "./pipelinedRequests.ts";

/** The stream's answer when no message matches. */
const NOT_FOUND = 404;
const SEQUENCE_HEADER = "Nats-Sequence";

/** A direct get that JetStream answered with an error status (not "not found"), or did not answer. */
export class DirectGetFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DirectGetFailed";
  }
}

const FIRST_SEQ: RequestKind<number | undefined> = {
  answer(msg: Msg): number | undefined {
    const headers = msg.headers;
    if (headers !== undefined && headers.code !== 0) {
      if (headers.code === NOT_FOUND) return undefined;
      throw new DirectGetFailed(`JetStream direct get answered ${headers.code} ${headers.description}`);
    }
    const seq = Number(headers?.get(SEQUENCE_HEADER));
    if (!Number.isSafeInteger(seq) || seq <= 0) throw new DirectGetFailed(`JetStream direct get answered without a ${SEQUENCE_HEADER}`);
    return seq;
  },
  timedOut: (ms) => new DirectGetFailed(`no JetStream direct get answer within ${ms} ms`),
  closed: { after: "direct gets are closed", waiting: "direct gets closed before JetStream answered" },
};

export class DirectGets {
  private readonly requests: PipelinedRequests<number | undefined>;

  constructor(
    nc: NatsConnection,
    timeoutMs: number,
    private readonly apiPrefix = "$JS.API",
  ) {
    this.requests = new PipelinedRequests(nc, timeoutMs, FIRST_SEQ);
  }

  /** The seq of the first message stored on `subject` after `afterSeq`, undefined when there is none. */
  firstSeqAfter(stream: string, subject: string, afterSeq: number): Promise<number | undefined> {
    return this.requests.request(`${this.apiPrefix}.DIRECT.GET.${stream}`, JSON.stringify({ seq: afterSeq + 1, next_by_subj: subject }));
  }

  close(): void {
    this.requests.close();
  }
}
