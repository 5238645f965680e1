/**
 * MemoryMatchLog: a MatchLog kept in memory, for driving a match actor without a NATS server (Mercure's
 * `local.go`, Centrifuge's memory broker). It behaves like the one JetStream stream of `bus/eventLog.ts`:
 * one sequence for every match (a match's seqs have gaps where other matches' messages sit), messages
 * that are not valid events occupy a seq and are skipped by every reader, `read` pages by payload bytes
 * with the same `through` rule, and `follow` replays what is stored then stays live, in order.
 *
 * Faults on cue, so each failure path of the actor can be proved deterministically:
 * - `failNext(method, n)`: the next n calls of `method` reject;
 * - `hangNext(method, n)`: the next n calls wait until `release(method)` (they then answer from the log
 *   as it is at release, or reject with the error given to `release`);
 * - `pauseFollowers()` / `resumeFollowers()`: live delivery stops (a stalled reader) and catches up.
 * Every call is counted (`calls`), and every `read` is recorded with the page it returned (`reads`).
 */
import type { Context } from "@opentelemetry/api";
import type { Json } from "../match/mergePatch.ts";
import type { Follower, LogPage, LoggedEvent, MatchLog } from "../bus/matchLog.ts";

export type LogMethod = "lastSeqOf" | "firstSeq" | "firstStoredAfter" | "read" | "follow";

export interface ReadCall {
  match: string;
  afterSeq: number;
  throughSeq: number;
  maxBytes: number;
  /** The page answered; undefined while the call hangs or when it failed. */
  page?: LogPage;
}

/** One stored message: an event, or something on the match's subject that is not one (`event` undefined). */
interface Stored {
  seq: number;
  match: string;
  event: LoggedEvent | undefined;
  /** What `read` counts against maxBytes: the stored payload's length, as JetStream's message data. */
  bytes: number;
}

interface MemoryFollower {
  match: string;
  /** Seq of the last message handed on (or passed over). */
  cursor: number;
  onEvent: (e: LoggedEvent, trace: Context | undefined) => void;
  stopped: boolean;
  scheduled: boolean;
}

type Fault = { kind: "fail"; error: Error } | { kind: "hang" };

const utf8 = new TextEncoder();

export class MemoryMatchLog implements MatchLog {
  private stored: Stored[] = [];
  private nextSeq = 1;
  /** Retention's floor: firstSeq never answers below it. */
  private retainedFrom = 1;
  private readonly followers = new Set<MemoryFollower>();
  private paused = false;
  private readonly faults = new Map<LogMethod, Fault[]>();
  private readonly hung = new Map<LogMethod, { run: () => void; reject: (err: Error) => void }[]>();

  readonly calls: Record<LogMethod, number> = { lastSeqOf: 0, firstSeq: 0, firstStoredAfter: 0, read: 0, follow: 0 };
  readonly reads: ReadCall[] = [];

  // ----- writing (what producers do through JetStream) ---------------------------------------------

  /** Stores an event of `match` at the next seq of the log and hands it to live followers; returns its seq. */
  append(match: string, input: { type?: string; data?: Json; state?: Json; ts?: number; private?: boolean; final?: boolean } = {}): number {
    const seq = this.nextSeq++;
    const payload: Record<string, unknown> = { type: input.type ?? "update", data: input.data ?? null, ts: input.ts ?? seq };
    if (input.state !== undefined) payload.state = input.state;
    if (input.private) payload.private = true;
    const event: LoggedEvent = { match, seq, type: payload.type as string, data: payload.data as Json, ts: payload.ts as number };
    if (input.state !== undefined) event.state = input.state;
    if (input.private) event.private = true;
    if (input.final) event.final = true;
    this.stored.push({ seq, match, event, bytes: utf8.encode(JSON.stringify(payload)).byteLength });
    this.wake(match);
    return seq;
  }

  /** Stores a message on the match's subject that is not a valid event: it takes a seq, every reader skips it. */
  appendInvalid(match: string, bytes = 16): number {
    const seq = this.nextSeq++;
    this.stored.push({ seq, match, event: undefined, bytes });
    this.wake(match);
    return seq;
  }

  /** Retention: forgets every message before `seq` (firstSeq moves up to it). */
  dropBefore(seq: number): void {
    this.stored = this.stored.filter((m) => m.seq >= seq);
    this.retainedFrom = Math.max(this.retainedFrom, seq);
  }

  /** The events of a match still stored, oldest first. */
  eventsOf(match: string): LoggedEvent[] {
    const out: LoggedEvent[] = [];
    for (const m of this.stored) if (m.match === match && m.event) out.push(m.event);
    return out;
  }

  // ----- MatchLog -----------------------------------------------------------------------------------

  lastSeqOf(match: string): Promise<number> {
    return this.call("lastSeqOf", () => {
      for (let i = this.stored.length - 1; i >= 0; i--) if (this.stored[i]!.match === match) return this.stored[i]!.seq;
      return 0;
    });
  }

  firstSeq(): Promise<number> {
    // JetStream's first_seq: the oldest message kept, or the next seq when nothing is.
    return this.call("firstSeq", () => this.stored[0]?.seq ?? Math.max(this.retainedFrom, this.nextSeq));
  }

  firstStoredAfter(match: string, afterSeq: number): Promise<number | undefined> {
    return this.call("firstStoredAfter", () => this.stored.find((m) => m.match === match && m.seq > afterSeq)?.seq);
  }

  read(match: string, afterSeq: number, throughSeq: number, maxBytes: number): Promise<LogPage> {
    const record: ReadCall = { match, afterSeq, throughSeq, maxBytes };
    this.reads.push(record);
    return this.call("read", () => {
      const page = this.page(match, afterSeq, throughSeq, maxBytes);
      record.page = page;
      return page;
    });
  }

  follow(match: string, afterSeq: number, onEvent: (e: LoggedEvent, trace: Context | undefined) => void): Promise<Follower> {
    return this.call("follow", () => {
      const f: MemoryFollower = { match, cursor: afterSeq, onEvent, stopped: false, scheduled: false };
      this.followers.add(f);
      // Like a JetStream consumer, the replay starts once the reader exists: after `follow` resolves.
      this.schedule(f);
      let through = afterSeq;
      for (const m of this.stored) if (m.match === match && m.seq > through) through = m.seq;
      return {
        through,
        stop: () => {
          f.stopped = true;
          this.followers.delete(f);
        },
      };
    });
  }

  /** Same rule as EventLog.read: whole events, stop once the page holds maxBytes (at least one event). */
  private page(match: string, afterSeq: number, throughSeq: number, maxBytes: number): LogPage {
    const events: LoggedEvent[] = [];
    if (throughSeq <= afterSeq) return { events, through: afterSeq };
    let bytes = 0;
    for (const m of this.stored) {
      if (m.seq <= afterSeq || m.match !== match) continue;
      if (m.seq > throughSeq) break;
      if (!m.event) continue;
      events.push(m.event);
      bytes += m.bytes;
      if (bytes >= maxBytes) return { events, through: m.seq };
    }
    return { events, through: throughSeq };
  }

  // ----- followers ----------------------------------------------------------------------------------

  /** Live readers of a match (or of every match): shows an actor stopped the one it no longer needs. */
  activeFollowers(match?: string): number {
    let n = 0;
    for (const f of this.followers) if (match === undefined || f.match === match) n++;
    return n;
  }

  /** Followers stop delivering (a stalled reader); what is stored meanwhile waits for `resumeFollowers`. */
  pauseFollowers(): void {
    this.paused = true;
  }

  resumeFollowers(): void {
    this.paused = false;
    for (const f of this.followers) this.schedule(f);
  }

  private wake(match: string): void {
    for (const f of this.followers) if (f.match === match) this.schedule(f);
  }

  /** Delivery runs in a microtask, as a NATS client's callbacks never run inside the publisher's call. */
  private schedule(f: MemoryFollower): void {
    if (f.scheduled) return;
    f.scheduled = true;
    queueMicrotask(() => {
      f.scheduled = false;
      this.pump(f);
    });
  }

  private pump(f: MemoryFollower): void {
    for (const m of this.stored) {
      if (this.paused || f.stopped) return;
      if (m.seq <= f.cursor || m.match !== f.match) continue;
      f.cursor = m.seq;
      if (m.event) f.onEvent(m.event, undefined);
    }
  }

  // ----- faults -------------------------------------------------------------------------------------

  /** The next `times` calls of `method` reject with `error`. */
  failNext(method: LogMethod, times = 1, error = new Error(`${method} failed (injected)`)): void {
    const list = this.faultsOf(method);
    for (let i = 0; i < times; i++) list.push({ kind: "fail", error });
  }

  /** The next `times` calls of `method` wait until `release(method)`. */
  hangNext(method: LogMethod, times = 1): void {
    const list = this.faultsOf(method);
    for (let i = 0; i < times; i++) list.push({ kind: "hang" });
  }

  /** Calls of `method` waiting now. */
  hanging(method: LogMethod): number {
    return this.hung.get(method)?.length ?? 0;
  }

  /** Lets every hung call of `method` answer from the log as it is now, or reject with `error`. */
  release(method: LogMethod, error?: Error): void {
    const waiting = this.hung.get(method) ?? [];
    this.hung.set(method, []);
    for (const w of waiting) {
      if (error) w.reject(error);
      else w.run();
    }
  }

  /** Forgets faults not yet used (hung calls stay hung until released). */
  clearFaults(): void {
    this.faults.clear();
  }

  private faultsOf(method: LogMethod): Fault[] {
    let list = this.faults.get(method);
    if (!list) this.faults.set(method, (list = []));
    return list;
  }

  private call<T>(method: LogMethod, answer: () => T): Promise<T> {
    this.calls[method]++;
    const fault = this.faults.get(method)?.shift();
    if (!fault) return Promise.resolve().then(answer);
    if (fault.kind === "fail") return Promise.reject(fault.error);
    return new Promise<T>((resolve, reject) => {
      let list = this.hung.get(method);
      if (!list) this.hung.set(method, (list = []));
      list.push({ run: () => resolve(answer()), reject });
    });
  }
}
