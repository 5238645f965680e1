/**
 * A Touchline stream over fetch: EventSource semantics (reconnects, resumes with Last-Event-ID, honours
 * `retry:`) plus what EventSource lacks: request headers (Authorization), typed events, exponential
 * backoff with full jitter, a hook per state change, reconnecting after HTTP errors that may pass (429,
 * 5xx), a dead-connection watchdog, and a close() that leaves no fetch or timer behind.
 * Runs in browsers, Bun and Node 18+ (global fetch, AbortController, TextDecoder, web streams).
 */
import { SseParser, type SseEvent } from "../sse/parse.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { httpErrorFrom, TouchlineProtocolError, TouchlineRefusedError } from "./errors.ts";
import type {
  AnyStreamEvent,
  ConnectionState,
  ControlEvent,
  EventDataMap,
  FetchLike,
  FootballEvents,
  FootballState,
  Json,
  MatchEvent,
  SnapshotEvent,
} from "./types.ts";

/** Three missed heartbeats at the server's default HEARTBEAT_MS (15 s): the connection is dead. */
export const DEFAULT_IDLE_TIMEOUT_MS = 45_000;
const SNAPSHOT_TYPE = "snapshot";
const CONTROL_PREFIX = "touchline.";
const REFUSED_TYPE = "touchline.refused";

function refusalOf(data: string): TouchlineRefusedError {
  try {
    const d = JSON.parse(data) as { error?: unknown; message?: unknown; retryAfterMs?: unknown };
    const wait = typeof d.retryAfterMs === "number" && Number.isFinite(d.retryAfterMs) ? d.retryAfterMs : undefined;
    return new TouchlineRefusedError(String(d.error ?? "refused"), String(d.message ?? "the node refused the stream"), wait);
  } catch {
    return new TouchlineRefusedError("refused", "the node refused the stream", undefined);
  }
}
const EVENT_STREAM = "text/event-stream";

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** Failed attempts since the last healthy connection (1 on the first `reconnecting`). */
  attempt: number;
  /** For `reconnecting`: how long until the next attempt. */
  delayMs?: number;
  /** Why the connection ended (for `reconnecting`, and `closed` after a fatal error). */
  error?: Error;
}

export interface StreamOptions {
  /** Resume after this id (sent as `Last-Event-ID`). Without one the stream starts with snapshots. */
  lastEventId?: string;
  /** Bearer token, or a function asked before each connection (so a refreshed token is used). */
  token?: string | (() => string | Promise<string>);
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** fetch implementation (defaults to the global one). */
  fetch?: FetchLike;
  backoff?: BackoffOptions;
  /** Reconnect when nothing (not even a `: ping`) arrived for this long; 0 disables. */
  idleTimeoutMs?: number;
  onStateChange?(change: StateChange): void;
  /**
   * Errors that do not close the stream: a lost connection, a malformed event, a listener that threw.
   * Without this hook they go to console.error.
   */
  onError?(error: Error): void;
}

type Listener = (event: never) => void;

/** How one connection ended. */
interface Ending {
  error: Error;
  fatal: boolean;
  retryAfterMs?: number;
}

export class TouchlineStream<M extends EventDataMap = FootballEvents, S = FootballState> {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;

  readonly url: string;
  private currentState: ConnectionState = "connecting";
  private id: string;
  private readonly backoff: Backoff;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly anyListeners = new Set<(event: AnyStreamEvent<M, S>) => void>();
  private readonly fetchImpl: FetchLike;
  private readonly idleTimeoutMs: number;
  private abort: AbortController | undefined;
  private sleepTimer: ReturnType<typeof setTimeout> | undefined;
  private wakeSleeper: (() => void) | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private closedByUser = false;
  private serverRetryMs: number | undefined;
  /** Settles when the connection loop has fully stopped (after close() or a fatal error). */
  readonly done: Promise<void>;

  constructor(
    url: string | URL,
    private readonly options: StreamOptions = {},
  ) {
    this.url = String(url);
    this.id = options.lastEventId ?? "";
    this.backoff = new Backoff(options.backoff);
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.done = this.run();
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** EventSource's readyState: CONNECTING while connecting or waiting to reconnect. */
  get readyState(): 0 | 1 | 2 {
    if (this.currentState === "open") return TouchlineStream.OPEN;
    return this.currentState === "closed" ? TouchlineStream.CLOSED : TouchlineStream.CONNECTING;
  }

  /** The id of the last event received: store it to resume later, from any node. */
  get lastEventId(): string {
    return this.id;
  }

  /** The server's last `retry:` in ms, if it sent one. */
  get retryMs(): number | undefined {
    return this.serverRetryMs;
  }

  /** Listens for one event type; returns a function that stops listening. */
  on(type: "snapshot", listener: (event: SnapshotEvent<S>) => void): () => void;
  on(type: `touchline.${string}`, listener: (event: ControlEvent) => void): () => void;
  on<K extends keyof M & string>(type: K, listener: (event: MatchEvent<K, M[K]>) => void): () => void;
  on(type: string, listener: Listener): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => void set.delete(listener);
  }

  /** Listens for every event, whatever its type. */
  onAny(listener: (event: AnyStreamEvent<M, S>) => void): () => void {
    this.anyListeners.add(listener);
    return () => void this.anyListeners.delete(listener);
  }

  /** Stops for good: aborts the request in flight and clears every timer. Idempotent. */
  close(): void {
    if (this.closedByUser) return;
    this.closedByUser = true;
    this.abort?.abort();
    this.clearIdleTimer();
    if (this.sleepTimer !== undefined) clearTimeout(this.sleepTimer);
    this.wakeSleeper?.();
    this.setState("closed", {});
  }

  private async run(): Promise<void> {
    this.notify({ state: "connecting", previous: "connecting", attempt: 0 });
    while (!this.closedByUser) {
      const ending = await this.connectOnce();
      if (this.closedByUser) return;
      if (ending.fatal) {
        this.setState("closed", { error: ending.error });
        this.closedByUser = true;
        return;
      }
      this.report(ending.error);
      const delayMs = this.backoff.next(ending.retryAfterMs ?? 0);
      this.setState("reconnecting", { delayMs, error: ending.error }, true);
      await this.sleep(delayMs);
    }
  }

  private async connectOnce(): Promise<Ending> {
    const abort = new AbortController();
    this.abort = abort;
    let res: Response;
    try {
      res = await this.fetchImpl(this.url, { headers: await this.requestHeaders(), signal: abort.signal, cache: "no-store" });
    } catch (error) {
      return { error: asError(error), fatal: false };
    }
    if (!res.ok) {
      const error = await httpErrorFrom(res);
      return { error, fatal: error.isFatal, ...(error.retryAfterMs !== undefined && { retryAfterMs: error.retryAfterMs }) };
    }
    const contentType = res.headers.get("content-type") ?? "";
    if (!contentType.toLowerCase().startsWith(EVENT_STREAM) || res.body === null) {
      await res.body?.cancel().catch(() => {});
      return { error: new TouchlineProtocolError(`expected ${EVENT_STREAM}, got "${contentType}"`), fatal: true };
    }
    if (this.closedByUser) return { error: new Error("closed"), fatal: true };
    return this.consume(res.body, abort);
  }

  private async consume(body: ReadableStream<Uint8Array>, abort: AbortController): Promise<Ending> {
    let healthy = false;
    let announced = false;
    let refused: TouchlineRefusedError | undefined;
    const announce = () => {
      if (announced || this.closedByUser) return;
      announced = true;
      this.setState("open", {});
    };
    const proveHealthy = () => {
      if (!healthy) this.backoff.reset();
      healthy = true;
    };
    const parser = new SseParser({
      onEvent: (event) => {
        // A refusal is not a healthy stream: the wait it asks for comes before the next attempt.
        if (event.type === REFUSED_TYPE) refused = refusalOf(event.data);
        else {
          announce();
          proveHealthy();
        }
        this.dispatch(event);
      },
      onRetry: (ms) => {
        this.serverRetryMs = ms;
        this.backoff.setBase(ms);
      },
      // A heartbeat proves the connection stays up; a stream that only ever opens and drops does not reset the backoff.
      onComment: proveHealthy,
    });
    const reader = body.getReader();
    this.armIdleTimer(abort);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          if (refused) return { error: refused, fatal: false, ...(refused.retryAfterMs !== undefined && { retryAfterMs: refused.retryAfterMs }) };
          return { error: new Error("the server ended the stream"), fatal: false };
        }
        this.armIdleTimer(abort);
        parser.feedBytes(value);
        // Open once the first bytes show a stream rather than a refusal (a refusal comes whole: retry,
        // the event, the end).
        if (!refused) announce();
      }
    } catch (error) {
      return { error: abort.signal.aborted && !this.closedByUser ? new Error(`no data for ${this.idleTimeoutMs} ms`) : asError(error), fatal: false };
    } finally {
      this.clearIdleTimer();
      reader.cancel().catch(() => {});
    }
  }

  private async requestHeaders(): Promise<Headers> {
    const headers = new Headers(this.options.headers);
    headers.set("accept", EVENT_STREAM);
    headers.set("cache-control", "no-cache");
    if (this.id !== "") headers.set("last-event-id", this.id);
    const token = typeof this.options.token === "function" ? await this.options.token() : this.options.token;
    if (token) headers.set("authorization", `Bearer ${token}`);
    return headers;
  }

  private dispatch(raw: SseEvent): void {
    if (this.closedByUser) return;
    // The server never sends an empty id; an event without an id line keeps the previous one.
    if (raw.lastEventId !== "") this.id = raw.lastEventId;
    let payload: unknown;
    try {
      payload = JSON.parse(raw.data);
    } catch {
      this.report(new TouchlineProtocolError(`event "${raw.type}" has data that is not JSON`));
      return;
    }
    const event = this.typed(raw.type, payload);
    if (event === undefined) {
      this.report(new TouchlineProtocolError(`event "${raw.type}" lacks its match`));
      return;
    }
    for (const listener of this.listeners.get(raw.type) ?? []) this.call(listener as (e: unknown) => void, event);
    for (const listener of this.anyListeners) this.call(listener as (e: unknown) => void, event);
  }

  private typed(type: string, payload: unknown): MatchEvent | SnapshotEvent<unknown> | ControlEvent | undefined {
    if (type.startsWith(CONTROL_PREFIX)) return { type: type as ControlEvent["type"], id: this.id, data: payload as Json };
    if (typeof payload !== "object" || payload === null) return undefined;
    const p = payload as { match?: unknown; data?: Json; ts?: unknown; state?: Json };
    if (typeof p.match !== "string") return undefined;
    if (type === SNAPSHOT_TYPE) return { type: SNAPSHOT_TYPE, id: this.id, match: p.match, state: p.state ?? {} };
    const event: MatchEvent = { type, id: this.id, match: p.match, data: p.data ?? null, ts: typeof p.ts === "number" ? p.ts : 0 };
    if (p.state !== undefined) event.state = p.state;
    return event;
  }

  private call(listener: (event: unknown) => void, event: unknown): void {
    try {
      listener(event);
    } catch (error) {
      this.report(asError(error));
    }
  }

  private report(error: Error): void {
    if (this.options.onError) this.options.onError(error);
    else console.error("touchline stream:", error);
  }

  private setState(state: ConnectionState, extra: { delayMs?: number; error?: Error }, repeat = false): void {
    const previous = this.currentState;
    if (previous === state && !repeat) return;
    if (previous === "closed") return;
    this.currentState = state;
    this.notify({ state, previous, attempt: this.backoff.attempts, ...extra });
  }

  private notify(change: StateChange): void {
    if (!this.options.onStateChange) return;
    try {
      this.options.onStateChange(change);
    } catch (error) {
      this.report(asError(error));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeSleeper = resolve;
      this.sleepTimer = setTimeout(() => {
        this.sleepTimer = undefined;
        this.wakeSleeper = undefined;
        resolve();
      }, ms);
    });
  }

  private armIdleTimer(abort: AbortController): void {
    if (this.idleTimeoutMs <= 0) return;
    this.clearIdleTimer();
    this.idleTimer = setTimeout(() => abort.abort(), this.idleTimeoutMs);
  }

  private clearIdleTimer(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
