/**
 * Incremental reader of one HTTP/1.1 response arriving over a raw TCP socket: the status line and
 * headers, then a body framed either as chunked or as identity (read until the socket closes).
 * SSE responses never end, so only the framing matters, not Content-Length.
 */

export interface ResponseSink {
  onHead(status: number, headers: Map<string, string>): void;
  onBody(bytes: Uint8Array): void;
  onFramingError(reason: string): void;
}

const CR = 0x0d;
const LF = 0x0a;
const SEMICOLON = 0x3b;
const HEAD_END = new Uint8Array([CR, LF, CR, LF]);
/** A head bigger than this is not a server we are benchmarking: stop rather than buffer forever. */
const MAX_HEAD_BYTES = 16 * 1024;
const HEX_RADIX = 16;

enum State {
  Head,
  Identity,
  ChunkSize,
  ChunkExtension,
  ChunkSizeLF,
  ChunkData,
  ChunkDataCR,
  ChunkDataLF,
  Done,
  Failed,
}

export class HttpResponseReader {
  private state = State.Head;
  private head: Uint8Array = new Uint8Array(0);
  private chunkRemaining = 0;
  private sizeDigits = 0;
  private readonly sink: ResponseSink;

  constructor(sink: ResponseSink) {
    this.sink = sink;
  }

  get failed(): boolean {
    return this.state === State.Failed;
  }

  /** Ignores whatever arrives from now on (the stream was closed by its owner). */
  stop(): void {
    this.state = State.Done;
  }

  feed(bytes: Uint8Array): void {
    let pos = 0;
    if (this.state === State.Head) {
      pos = this.readHead(bytes);
      if (pos < 0) return;
    }
    if (this.state === State.Identity) {
      if (pos < bytes.length) this.sink.onBody(pos === 0 ? bytes : bytes.subarray(pos));
      return;
    }
    this.readChunked(bytes, pos);
  }

  /** Returns where the body starts in `bytes`, or -1 when the head is not complete yet. */
  private readHead(bytes: Uint8Array): number {
    const previous = this.head.length;
    const joined = previous === 0 ? bytes : concat(this.head, bytes);
    // The terminator may straddle the previous piece: search from up to 3 bytes back.
    const end = indexOf(joined, HEAD_END, Math.max(0, previous - (HEAD_END.length - 1)));
    if (end === -1) {
      if (joined.length > MAX_HEAD_BYTES) {
        this.fail("response head too large");
        return -1;
      }
      this.head = joined === bytes ? bytes.slice() : joined;
      return -1;
    }
    this.head = new Uint8Array(0);
    const lines = new TextDecoder("latin1").decode(joined.subarray(0, end)).split("\r\n");
    const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
    if (statusMatch === null) {
      this.fail(`bad status line: ${lines[0]}`);
      return -1;
    }
    const headers = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? "";
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const chunked = (headers.get("transfer-encoding") ?? "").toLowerCase().includes("chunked");
    this.state = chunked ? State.ChunkSize : State.Identity;
    this.sink.onHead(Number(statusMatch[1]), headers);
    // onHead may have closed the stream (a non-200 answer).
    if (this.stopped()) return -1;
    return end + HEAD_END.length - previous;
  }

  private readChunked(bytes: Uint8Array, start: number): void {
    let pos = start;
    const length = bytes.length;
    while (pos < length) {
      switch (this.state) {
        case State.ChunkData: {
          const take = Math.min(this.chunkRemaining, length - pos);
          this.sink.onBody(bytes.subarray(pos, pos + take));
          if (this.stopped()) return;
          pos += take;
          this.chunkRemaining -= take;
          if (this.chunkRemaining === 0) this.state = State.ChunkDataCR;
          break;
        }
        case State.ChunkSize: {
          const byte = bytes[pos++] as number;
          const digit = hexValue(byte);
          if (digit >= 0) {
            this.chunkRemaining = this.chunkRemaining * HEX_RADIX + digit;
            this.sizeDigits++;
          } else if (byte === CR && this.sizeDigits > 0) {
            this.state = State.ChunkSizeLF;
          } else if (byte === SEMICOLON && this.sizeDigits > 0) {
            this.state = State.ChunkExtension;
          } else {
            return this.fail("bad chunk size");
          }
          break;
        }
        case State.ChunkExtension:
          if (bytes[pos++] === CR) this.state = State.ChunkSizeLF;
          break;
        case State.ChunkSizeLF:
          if (bytes[pos++] !== LF) return this.fail("chunk size line not ended by CRLF");
          this.sizeDigits = 0;
          // A zero-size chunk ends the body: the server closed the stream on purpose.
          if (this.chunkRemaining === 0) {
            this.state = State.Done;
            return;
          }
          this.state = State.ChunkData;
          break;
        case State.ChunkDataCR:
          if (bytes[pos++] !== CR) return this.fail("chunk data not followed by CRLF");
          this.state = State.ChunkDataLF;
          break;
        case State.ChunkDataLF:
          if (bytes[pos++] !== LF) return this.fail("chunk data not followed by CRLF");
          this.state = State.ChunkSize;
          break;
        default:
          return;
      }
    }
  }

  /** Read through a method: the compiler cannot see that the sink's callbacks may change the state. */
  private stopped(): boolean {
    return this.state === State.Failed || this.state === State.Done;
  }

  private fail(reason: string): void {
    this.state = State.Failed;
    this.sink.onFramingError(reason);
  }
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a, 0);
  joined.set(b, a.length);
  return joined;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const last = haystack.length - needle.length;
  outer: for (let i = from; i <= last; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
