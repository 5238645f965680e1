/**
 * PipelinedRequests: NATS requests answered on one inbox subscription, sent pipelined.
 *
 * nats.js's `request` makes each request a reply token, a timer, a deferred and an error object with
 * a stack, and since every caller runs in a task of its own, each request also leaves in a socket
 * write of its own. Here every answer arrives on one inbox subscription, one sweep times out what was
 * never answered, and the requests asked for within one turn of the event loop leave together, in
 * order, in one write (setImmediate): under load many share a write; alone, a request waits for
 * nothing but the current turn.
 *
 * Order: requests leave in the order they were asked for, on one connection (JetStream stores
 * publishes in that order: the batch API and every match's order rely on it).
 *
 * A send pass stops once it has spent SEND_TURN_BUDGET_MS, and the rest leave in the next turn, still
 * first in line: four 500-item batches arriving together are 2,000 publishes, and sending them in one
 * go held the event loop 10-40 ms on a fresh node (its code still cold), with /readyz, timers and
 * acks waiting behind it.
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";

/** How often unanswered requests are checked for their timeout. */
const SWEEP_MS = 250;
/** A send pass hands the client requests until it has spent this long; the rest go next turn. */
const SEND_TURN_BUDGET_MS = 2;
/** The clock is read once per this many requests sent. */
const SENDS_PER_CLOCK_READ = 32;

interface Outgoing {
  subject: string;
  data: string | Uint8Array;
  headers: MsgHdrs | undefined;
  token: number;
}

interface Waiting<T> {
  resolve(answer: T): void;
  reject(err: Error): void;
  deadline: number;
}

export interface RequestKind<T> {
  /** Reads an answer: what the request resolves to, or throws the error it rejects with. */
  answer(msg: Msg): T;
  /** The error of a request unanswered within the timeout (its outcome is unknown). */
  timedOut(ms: number): Error;
  /** Why requests fail once closed (asked for after, or still waiting at, `close`). */
  closed: { after: string; waiting: string };
  /** The error of a request the client refused to send (it threw): never sent, so never answered. */
  notSent?(err: Error): Error;
}

export class PipelinedRequests<T> {
  private readonly inbox: string;
  private readonly sub: Subscription;
  private readonly waiting = new Map<number, Waiting<T>>();
  /** Requests not sent yet, in order, from `queueHead`. */
  private queue: Outgoing[] = [];
  private queueHead = 0;
  private flushScheduled = false;
  private nextToken = 1;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
    private readonly kind: RequestKind<T>,
  ) {
    this.inbox = `${createInbox()}.`;
    this.sub = nc.subscribe(`${this.inbox}*`, { callback: (err, msg) => (err ? undefined : this.onAnswer(msg)) });
  }

  /** Sends `data` on `subject` with this turn's other requests; resolves with the kind's reading of the answer. */
  request(subject: string, data: string | Uint8Array, headers?: MsgHdrs): Promise<T> {
    if (this.closed) return Promise.reject(new Error(this.kind.closed.after));
    const token = this.nextToken++;
    const answered = new Promise<T>((resolve, reject) => {
      this.waiting.set(token, { resolve, reject, deadline: Date.now() + this.timeoutMs });
    });
    this.queue.push({ subject, data, headers, token });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    this.sweepTimer ??= setInterval(() => this.sweep(), SWEEP_MS);
    return answered;
  }

  /** Rejects everything still waiting and stops listening. */
  close(): void {
    this.closed = true;
    this.sub.unsubscribe();
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.queue = [];
    this.queueHead = 0;
    const err = new Error(this.kind.closed.waiting);
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** Requests sent or queued and not answered yet. */
  get inFlight(): number {
    return this.waiting.size;
  }

  private flush(): void {
    this.flushScheduled = false;
    const started = performance.now();
    // One synchronous run, so the client writes them to its socket together, within the budget.
    while (this.queueHead < this.queue.length) {
      if ((this.queueHead + 1) % SENDS_PER_CLOCK_READ === 0 && performance.now() - started >= SEND_TURN_BUDGET_MS) {
        // The sent ones are let go now: under a steady overload the queue never runs empty, and its
        // sent prefix would grow without end.
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
        this.flushScheduled = true;
        setImmediate(() => this.flush());
        return;
      }
      const o = this.queue[this.queueHead++] as Outgoing;
      try {
        this.nc.publish(o.subject, o.data, o.headers ? { reply: this.inbox + o.token, headers: o.headers } : { reply: this.inbox + o.token });
      } catch (err) {
        const thrown = err instanceof Error ? err : new Error(String(err));
        this.settle(o.token, () => {
          throw this.kind.notSent?.(thrown) ?? thrown;
        });
      }
    }
    this.queue = [];
    this.queueHead = 0;
  }

  private onAnswer(msg: Msg): void {
    const token = Number(msg.subject.slice(this.inbox.length));
    if (!this.waiting.has(token)) return; // timed out already
    this.settle(token, () => this.kind.answer(msg));
  }

  private settle(token: number, read: () => T): void {
    const w = this.waiting.get(token);
    if (!w) return;
    this.waiting.delete(token);
    try {
      w.resolve(read());
    } catch (err) {
      w.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (this.waiting.size === 0) this.stopSweep();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [token, w] of this.waiting) {
      // Map order is request order, so deadlines are in order too: stop at the first not yet due.
      if (w.deadline > now) break;
      this.waiting.delete(token);
      w.reject(this.kind.timedOut(this.timeoutMs));
    }
    if (this.waiting.size === 0) this.stopSweep();
  }

  private stopSweep(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }
}
