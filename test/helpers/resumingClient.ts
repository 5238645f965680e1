/**
 * A test subscriber that behaves like a browser's EventSource behind a load balancer: it streams from
 * one of the given nodes and, whenever its stream ends or fails, reconnects to another with the id of
 * the last event it saw. It records every event and the longest silence between two events.
 * Touchline's own events (`touchline.refused`, `touchline.hello`, `touchline.ping`, ...) carry no id and
 * are not match events: they are not recorded (refusals are counted); a refused stream ends, and the
 * client reconnects as after any other end.
 */
import { SseParser } from "../../src/sse/parse.ts";
import { seqOf } from "./eventIds.ts";

const TOUCHLINE_EVENTS = "touchline.";
const REFUSED_EVENT = "touchline.refused";

export interface Received {
  id: string;
  type: string;
  data: unknown;
}

export class ResumingClient {
  readonly events: Received[] = [];
  snapshots = 0;
  /** Streams refused in the SSE form (one `touchline.refused` event, then the end). */
  refusals = 0;
  reconnects = 0;
  longestGapMs = 0;
  private lastEventAt = 0;
  private lastId: string | undefined;
  private abort = new AbortController();
  private closed = false;
  private turn: number;

  constructor(
    private readonly path: string,
    private readonly urls: () => string[],
    start = 0,
  ) {
    this.turn = start;
    void this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const urls = this.urls();
      const base = urls[this.turn++ % urls.length]!;
      try {
        this.abort = new AbortController();
        const res = await fetch(base + this.path, {
          headers: this.lastId ? { "Last-Event-ID": this.lastId } : {},
          signal: this.abort.signal,
        });
        if (res.status === 200 && res.body) {
          const parser = new SseParser({
            onEvent: (e) => {
              if (e.type === "snapshot") this.snapshots++;
              else if (e.type === REFUSED_EVENT) this.refusals++;
              else if (e.type.startsWith(TOUCHLINE_EVENTS)) {
                /* the node's own events (hello, ping, end): not match events */
              } else {
                const now = Date.now();
                if (this.lastEventAt) this.longestGapMs = Math.max(this.longestGapMs, now - this.lastEventAt);
                this.lastEventAt = now;
                this.events.push({ id: e.lastEventId, type: e.type, data: JSON.parse(e.data) });
              }
              if (e.lastEventId) this.lastId = e.lastEventId;
            },
          });
          for await (const chunk of res.body) parser.feedBytes(chunk);
        } else {
          await res.body?.cancel();
        }
      } catch {
        /* connection refused or reset: try the next node */
      }
      if (this.closed) break;
      this.reconnects++;
      await Bun.sleep(50 + Math.random() * 150);
    }
  }

  /** The ids of the events received, as sent (`<seq>@<tag>`). */
  ids(): string[] {
    return this.events.map((e) => e.id);
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
  }
}

/**
 * Asserts-friendly summary: duplicates and out-of-order positions in what a client received. Ids are
 * `<seq>@<tag>` (anything else throws); order is by sequence.
 */
export function orderProblems(ids: string[]): { duplicates: number; disorder: number } {
  let duplicates = 0;
  let disorder = 0;
  const seen = new Set<string>();
  for (let i = 0; i < ids.length; i++) {
    if (seen.has(ids[i]!)) duplicates++;
    seen.add(ids[i]!);
    if (i > 0 && seqOf(ids[i]!) <= seqOf(ids[i - 1]!)) disorder++;
  }
  return { duplicates, disorder };
}
