/**
 * Many SSE subscribers over raw TCP (`Bun.connect`), far lighter than fetch or EventSource. Each
 * stream reads its HTTP framing and SSE frames incrementally (TickScanner, which hands any stream
 * outside the usual shape to the project's SseParser), and checks every event for loss,
 * duplicates and order against the sequence number the publisher put in it.
 * Connections are spread over several loopback addresses (and over the ports of a cluster's
 * nodes) so no (address, port) pair runs out of ephemeral ports.
 *
 * A server may refuse a stream with a status (503) or, as Touchline does so that browsers come back by
 * themselves, with a 200 stream of `retry:` and one `touchline.refused` event that then ends. Either is
 * a refusal at open, never a live stream or a drop.
 */
import type { Socket } from "bun";
import { HttpResponseReader } from "./http-response.ts";
import { LatencyHistogram } from "./latency-histogram.ts";
import type { DeliveryStats, OpenReply, StormReply, StreamGroup } from "./protocol.ts";
import { TickScanner, type TickSink } from "./tick-scanner.ts";

/** Connections started but not yet answered; more would overflow the servers' listen backlogs. */
export const MAX_CONNECTING = 256;
const MAX_CONNECT_ATTEMPTS = 5;
const CONNECT_RETRY_DELAY_MS = 200;
/** A stream the server broke is reopened like a browser would, a bounded number of times. */
const RECONNECT_DELAY_MS = 250;
const MAX_RECONNECTS_PER_STREAM = 20;
const POLL_INTERVAL_MS = 50;
const HTTP_OK = 200;
const HTTP_SERVICE_UNAVAILABLE = 503;
const EVENT_STREAM = "text/event-stream";

/** How the server last turned a stream away: a 503, a `touchline.refused` event, or any other status. */
type Refusal = "unavailable" | "in-stream" | "other";

enum StreamState {
  Queued,
  Connecting,
  Live,
  Closed,
  Failed,
}

interface Target {
  hosts: string[];
  ports: number[];
  pathTemplate: string;
  resume: boolean;
}

/** One TCP connection of a stream; a stream gets a new one on every reconnect. */
interface Connection {
  stream: SubscriberStream;
  socket: Socket<Connection> | null;
  reader: HttpResponseReader;
  /** The stream's everLive before this connection's head made it live (restored if it is refused). */
  everLiveBefore: boolean;
}

class SubscriberStream implements TickSink {
  state = StreamState.Queued;
  lastSeq: number;
  current: Connection | null = null;
  readonly scanner: TickScanner;
  attempts = 0;
  /** Streams refused at open (never live) are reported as such, not counted as losing events. */
  everLive = false;
  /** How the server last refused the stream, if it did (see Refusal). */
  lastRefusal: Refusal | null = null;
  reconnects = 0;
  /** The next event may skip sequence numbers: set when a peer without resume was reconnected. */
  gapAllowed = false;
  /** Time to first event: when its first connection of an open started (-1: not yet, 0: not measured or done). */
  openStartedAt = 0;
  /** Ms from openStartedAt to the first body byte; -1 until then. */
  firstByteMs = -1;

  constructor(
    readonly channel: string,
    readonly host: string,
    readonly port: number,
    baseline: number,
    private readonly fleet: SubscriberFleet,
  ) {
    this.lastSeq = baseline;
    this.scanner = new TickScanner(channel, this);
  }

  onTick(seq: number, ts: number, channelMatches: boolean): void {
    this.fleet.onTick(this, seq, ts, channelMatches);
  }

  onForeign(): void {
    this.fleet.onForeign();
  }

  onRefused(): void {
    this.fleet.onRefused(this);
  }
}

export class SubscriberFleet {
  private streams: SubscriberStream[] = [];
  private queue: SubscriberStream[] = [];
  private connecting = 0;
  private target: Target | null = null;
  private readonly latency = new LatencyHistogram();
  private deliveries = 0;
  private gapsLost = 0;
  private duplicates = 0;
  private reordered = 0;
  private foreign = 0;
  private drops = 0;
  private firstDeliveryAt = 0;
  private lastDeliveryAt = 0;
  private cpuBaseline = process.cpuUsage();
  private closing = false;

  async open(target: Target, groups: StreamGroup[], timeoutMs: number): Promise<OpenReply> {
    this.target = target;
    this.closing = false;
    const started = performance.now();
    const opened: SubscriberStream[] = [];
    for (const group of groups) {
      for (let i = 0; i < group.count; i++) {
        const index = this.streams.length;
        const port = target.ports[index % target.ports.length] as number;
        const host = target.hosts[Math.floor(index / target.ports.length) % target.hosts.length] as string;
        const stream = new SubscriberStream(group.channel, host, port, group.baseline, this);
        stream.openStartedAt = -1;
        this.streams.push(stream);
        opened.push(stream);
        this.queue.push(stream);
      }
    }
    this.pump();
    await this.until(() => opened.every(settled), timeoutMs);
    const live = count(opened, StreamState.Live);
    const notLive = opened.filter((s) => s.state !== StreamState.Live);
    const refused = notLive.filter((s) => s.lastRefusal === "unavailable" || s.lastRefusal === "in-stream").length;
    const refusedInStream = notLive.filter((s) => s.lastRefusal === "in-stream").length;
    const firstByte = new LatencyHistogram();
    for (const stream of opened) if (stream.firstByteMs >= 0) firstByte.record(stream.firstByteMs);
    return { live, failed: opened.length - live, refused, refusedInStream, ms: performance.now() - started, firstByte: firstByte.snapshot() };
  }

  reset(): void {
    this.latency.reset();
    this.deliveries = 0;
    this.gapsLost = 0;
    this.duplicates = 0;
    this.reordered = 0;
    this.foreign = 0;
    this.drops = 0;
    this.firstDeliveryAt = 0;
    this.lastDeliveryAt = 0;
    this.cpuBaseline = process.cpuUsage();
  }

  async awaitFinals(finals: Record<string, number>, timeoutMs: number): Promise<DeliveryStats> {
    const watched = this.streams.filter((s) => s.everLive && finals[s.channel] !== undefined);
    const reached = (s: SubscriberStream): boolean => s.lastSeq >= (finals[s.channel] as number);
    await this.until(() => watched.every(reached), timeoutMs);
    let tailLost = 0;
    let behind = 0;
    for (const stream of watched) {
      const final = finals[stream.channel] as number;
      if (stream.lastSeq < final) {
        behind++;
        tailLost += final - stream.lastSeq;
      }
    }
    return this.stats(tailLost, behind);
  }

  /** Cuts every live stream at once, then reconnects all of them (with Last-Event-ID when the peer resumes). */
  async storm(timeoutMs: number): Promise<StormReply> {
    const target = this.requireTarget();
    const started = performance.now();
    const cut = this.streams.filter((s) => s.state === StreamState.Live);
    for (const stream of cut) this.detach(stream);
    for (const stream of cut) {
      if (!target.resume) stream.gapAllowed = true;
      stream.attempts = 0;
      stream.state = StreamState.Queued;
      this.queue.push(stream);
    }
    this.pump();
    await this.until(() => cut.every(settled), timeoutMs);
    const live = count(cut, StreamState.Live);
    return { live, failed: cut.length - live, ms: performance.now() - started };
  }

  async closeAll(timeoutMs: number): Promise<number> {
    this.closing = true;
    this.queue = [];
    const closed = this.streams.length;
    for (const stream of this.streams) {
      this.detach(stream);
      stream.state = StreamState.Closed;
    }
    this.streams = [];
    // Give the FINs a moment to leave, so the server sees the streams go before the next scenario.
    await Bun.sleep(Math.min(timeoutMs, POLL_INTERVAL_MS));
    return closed;
  }

  onTick(stream: SubscriberStream, seq: number, ts: number, channelMatches: boolean): void {
    if (!channelMatches) {
      this.foreign++;
      return;
    }
    const now = Date.now();
    this.deliveries++;
    if (this.firstDeliveryAt === 0) this.firstDeliveryAt = now;
    this.lastDeliveryAt = now;
    this.latency.record(now - ts);
    const expected = stream.lastSeq + 1;
    if (seq === expected) {
      stream.lastSeq = seq;
    } else if (seq > expected) {
      if (!stream.gapAllowed) this.gapsLost += seq - expected;
      stream.lastSeq = seq;
    } else if (seq === stream.lastSeq) {
      this.duplicates++;
    } else {
      this.reordered++;
    }
    stream.gapAllowed = false;
  }

  onForeign(): void {
    this.foreign++;
  }

  private stats(tailLost: number, behind: number): DeliveryStats {
    const cpu = process.cpuUsage(this.cpuBaseline);
    return {
      deliveries: this.deliveries,
      latency: this.latency.snapshot(),
      lost: this.gapsLost + tailLost,
      duplicates: this.duplicates,
      reordered: this.reordered,
      foreign: this.foreign,
      drops: this.drops,
      behind,
      cpuUs: cpu.user + cpu.system,
      firstDeliveryAt: this.firstDeliveryAt,
      lastDeliveryAt: this.lastDeliveryAt,
    };
  }

  private pump(): void {
    while (this.connecting < MAX_CONNECTING && this.queue.length > 0) {
      const stream = this.queue.pop() as SubscriberStream;
      if (stream.state !== StreamState.Queued) continue;
      this.connect(stream);
    }
  }

  private connect(stream: SubscriberStream): void {
    const target = this.requireTarget();
    stream.state = StreamState.Connecting;
    stream.attempts++;
    this.connecting++;
    stream.scanner.reset();
    if (stream.openStartedAt < 0) stream.openStartedAt = performance.now();
    const connection: Connection = { stream, socket: null, reader: null as unknown as HttpResponseReader, everLiveBefore: stream.everLive };
    connection.reader = new HttpResponseReader({
      onHead: (status, headers) => this.onHead(connection, status, headers),
      onBody: (bytes) => {
        stream.scanner.feed(bytes);
        // After the scan: a body that refused the stream (touchline.refused) has made it not live again.
        if (stream.openStartedAt > 0 && stream.state === StreamState.Live) {
          stream.firstByteMs = Math.round(performance.now() - stream.openStartedAt);
          stream.openStartedAt = 0;
        }
      },
      onFramingError: (reason) => this.onBroken(connection, `framing: ${reason}`),
    });
    stream.current = connection;
    const path = target.pathTemplate.replace("{channel}", encodeURIComponent(stream.channel));
    const resumeHeader = target.resume && stream.scanner.lastEventId !== "" ? `Last-Event-ID: ${stream.scanner.lastEventId}\r\n` : "";
    const request =
      `GET ${path} HTTP/1.1\r\nHost: ${stream.host}:${stream.port}\r\n` + `Accept: text/event-stream\r\nCache-Control: no-cache\r\n${resumeHeader}\r\n`;
    const fleet = this;
    Bun.connect<Connection>({
      hostname: stream.host,
      port: stream.port,
      data: connection,
      socket: {
        binaryType: "uint8array",
        open(socket) {
          if (stream.current !== connection) return void socket.end();
          connection.socket = socket;
          socket.write(request);
        },
        data(_socket, bytes) {
          if (stream.current === connection) connection.reader.feed(bytes);
        },
        close() {
          fleet.onBroken(connection, "closed");
        },
        end() {
          fleet.onBroken(connection, "ended");
        },
        error() {
          fleet.onBroken(connection, "error");
        },
        connectError() {
          fleet.onBroken(connection, "connect error");
        },
      },
    }).catch(() => this.onBroken(connection, "connect rejected"));
  }

  private onHead(connection: Connection, status: number, headers: Map<string, string>): void {
    const stream = connection.stream;
    // A 200 that is not an event stream is a broken server, not a stream: treat it as a refusal.
    if (status !== HTTP_OK || !(headers.get("content-type") ?? "").startsWith(EVENT_STREAM)) {
      stream.lastRefusal = status === HTTP_SERVICE_UNAVAILABLE ? "unavailable" : "other";
      connection.reader.stop();
      this.onBroken(connection, `status ${status}`);
      return;
    }
    // An event stream with a length is a finite answer, not a live stream (Touchline's refusal is one):
    // it stays connecting until its `touchline.refused` event (a refusal) or its end (a failed attempt).
    if (headers.has("content-length")) return;
    this.connecting--;
    stream.state = StreamState.Live;
    stream.everLive = true;
    this.pump();
  }

  /** The stream's first answer was a 200 whose event is `touchline.refused`: a refusal at open, not a drop. */
  onRefused(stream: SubscriberStream): void {
    const connection = stream.current;
    if (connection === null) return;
    stream.lastRefusal = "in-stream";
    if (stream.state === StreamState.Live) {
      // Its head made it live (a refusal streamed without a length): undo that.
      this.connecting++;
      stream.state = StreamState.Connecting;
      stream.everLive = connection.everLiveBefore;
    }
    connection.reader.stop();
    this.onBroken(connection, "refused in the stream");
  }

  /** The connection ended; only the stream's current one matters, and only once. */
  private onBroken(connection: Connection, _reason: string): void {
    const stream = connection.stream;
    if (stream.current !== connection) return;
    stream.current = null;
    connection.reader.stop();
    connection.socket?.end();
    if (stream.state === StreamState.Connecting) {
      this.connecting--;
      this.retryLater(stream, CONNECT_RETRY_DELAY_MS, stream.attempts < MAX_CONNECT_ATTEMPTS);
    } else if (stream.state === StreamState.Live) {
      this.drops++;
      stream.reconnects++;
      stream.attempts = 0;
      this.retryLater(stream, RECONNECT_DELAY_MS, stream.reconnects <= MAX_RECONNECTS_PER_STREAM);
    }
    this.pump();
  }

  private retryLater(stream: SubscriberStream, delayMs: number, allowed: boolean): void {
    if (!allowed || this.closing) {
      stream.state = StreamState.Failed;
      return;
    }
    stream.state = StreamState.Queued;
    setTimeout(() => {
      if (stream.state !== StreamState.Queued || this.closing) return;
      this.queue.push(stream);
      this.pump();
    }, delayMs);
  }

  /** Forgets the stream's connection and closes it, without counting a drop. */
  private detach(stream: SubscriberStream): void {
    const connection = stream.current;
    if (connection === null) return;
    stream.current = null;
    if (stream.state === StreamState.Connecting) this.connecting--;
    connection.reader.stop();
    connection.socket?.end();
  }

  private requireTarget(): Target {
    if (this.target === null) throw new Error("no streams opened yet");
    return this.target;
  }

  private async until(done: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!done() && performance.now() < deadline) await Bun.sleep(POLL_INTERVAL_MS);
  }
}

function settled(stream: SubscriberStream): boolean {
  return stream.state === StreamState.Live || stream.state === StreamState.Failed;
}

function count(streams: SubscriberStream[], state: StreamState): number {
  let n = 0;
  for (const stream of streams) if (stream.state === state) n++;
  return n;
}
