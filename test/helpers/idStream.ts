/**
 * A lean SSE reader for tests that move gigabytes: it keeps only the `id:` and `event:` lines of a
 * stream and skips everything else without decoding it, so one test process can keep up with many
 * streams of large events (the full reader in sse.ts decodes and parses every byte). Reads through
 * fetch, whose native chunked decoding is fast; a stream it reads is never the slow one.
 */

const NEWLINE = 10;
/** First bytes of the lines kept: `i`d and `e`vent. */
const I = 0x69;
const E = 0x65;
const ID_PREFIX = "id: ";
const EVENT_PREFIX = "event: ";
/** A partial line is kept only if it may be an `id:` or `event:` line: no longer than this. */
const MAX_KEPT_LINE = 256;

/**
 * Splits bytes into lines and hands on the `id:` and `event:` ones and the blank line ending each event;
 * other lines are never copied.
 */
export class IdLineScanner {
  /** Start of a line cut by a chunk boundary, when it may be a line we want. */
  private tail: Uint8Array | undefined;
  /** The current line is one we skip (its start was in an earlier chunk). */
  private skipping = false;
  private readonly decoder = new TextDecoder();

  constructor(private readonly onField: (field: "id" | "event" | "end", value: string) => void) {}

  feed(chunk: Uint8Array): void {
    let start = 0;
    if (this.tail || this.skipping) {
      const nl = chunk.indexOf(NEWLINE);
      if (nl === -1) {
        if (this.tail) this.keep(chunk, 0, chunk.length);
        return;
      }
      if (this.tail) {
        const line = new Uint8Array(this.tail.length + nl);
        line.set(this.tail);
        line.set(chunk.subarray(0, nl), this.tail.length);
        this.line(line, 0, line.length);
      }
      this.tail = undefined;
      this.skipping = false;
      start = nl + 1;
    }
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl === -1) break;
      this.line(chunk, start, nl);
      start = nl + 1;
    }
    if (start < chunk.length) this.keep(chunk, start, chunk.length);
  }

  /** Holds the start of a cut line if it may matter; otherwise just remembers to skip its rest. */
  private keep(chunk: Uint8Array, from: number, to: number): void {
    const have = this.tail?.length ?? 0;
    const first = have > 0 ? this.tail![0] : chunk[from];
    const interesting = first === I || first === E;
    if (!interesting || have + (to - from) > MAX_KEPT_LINE) {
      this.tail = undefined;
      this.skipping = true;
      return;
    }
    const next = new Uint8Array(have + (to - from));
    if (this.tail) next.set(this.tail);
    next.set(chunk.subarray(from, to), have);
    this.tail = next;
  }

  private line(bytes: Uint8Array, from: number, to: number): void {
    if (from === to) {
      this.onField("end", "");
      return;
    }
    const first = bytes[from];
    if (first !== I && first !== E) return;
    if (to - from > MAX_KEPT_LINE) return;
    const text = this.decoder.decode(bytes.subarray(from, to));
    if (text.startsWith(ID_PREFIX)) this.onField("id", text.slice(ID_PREFIX.length));
    else if (text.startsWith(EVENT_PREFIX)) this.onField("event", text.slice(EVENT_PREFIX.length));
  }
}

/** One connection's match event ids, in the order they came, and the server's own events. */
export interface IdStreamResult {
  ids: string[];
  /** Server events (snapshot, touchline.*), in order, with their ids when they had one. */
  serverEvents: { type: string; id: string | undefined }[];
  /** The server ended the stream (a paged replay, a cut); false when we closed it. */
  endedByServer: boolean;
  status: number;
}

export interface IdStreamOptions {
  lastEventId?: string;
  /** Stop reading (and close) once this holds, checked after each chunk. */
  stopWhen?: (ids: readonly string[]) => boolean;
  /** Close when nothing arrived for this long (ms). */
  idleMs?: number;
  /** Called for every id as it arrives. */
  onId?: (id: string) => void;
  /** Called once the answer's head arrived (the stream is open, or refused). */
  onOpen?: (status: number) => void;
}

const SERVER_EVENT = /^(snapshot|touchline\.)/;

/** Opens `url`, reads ids until the server ends the stream, `stopWhen` holds, or it stays idle. */
export async function readIds(url: string, opts: IdStreamOptions = {}): Promise<IdStreamResult> {
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (opts.lastEventId !== undefined) headers["last-event-id"] = opts.lastEventId;
  const res = await fetch(url, { headers });
  opts.onOpen?.(res.status);
  const result: IdStreamResult = { ids: [], serverEvents: [], endedByServer: false, status: res.status };
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    return result;
  }
  let id: string | undefined;
  let type = "message";
  const scanner = new IdLineScanner((field, value) => {
    if (field === "id") id = value;
    else if (field === "event") type = value;
    else {
      if (SERVER_EVENT.test(type)) result.serverEvents.push({ type, id });
      else if (id !== undefined) {
        result.ids.push(id);
        opts.onId?.(id);
      }
      id = undefined;
      type = "message";
    }
  });
  const reader = res.body.getReader();
  const idleMs = opts.idleMs ?? 0;
  try {
    for (;;) {
      const next = idleMs > 0 ? await Promise.race([reader.read(), Bun.sleep(idleMs).then(() => "idle" as const)]) : await reader.read();
      if (next === "idle") break;
      if (next.done) {
        result.endedByServer = true;
        break;
      }
      scanner.feed(next.value);
      if (opts.stopWhen?.(result.ids)) break;
    }
  } catch {
    // A stream the server errored (a cut) ends the read like any other end.
    result.endedByServer = true;
  } finally {
    if (!result.endedByServer) await reader.cancel().catch(() => {});
  }
  return result;
}
