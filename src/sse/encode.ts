/**
 * Server-Sent Events wire encoding (WHATWG HTML, "Server-sent events").
 *
 * Pure string functions, no I/O. One encoded message is shared by every subscriber of a match,
 * so the common case (an id, a type and one-line JSON data) takes a fast path without regexes
 * on the data.
 */

export interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
}

/** Every line end the WHATWG parser recognises: CRLF, lone CR, lone LF. CRLF first so it counts once. */
const LINE_BREAK = /\r\n|\r|\n/g;

/** Characters that would end a field early (CR, LF) or make parsers ignore an id (NUL). */
const NOT_SINGLE_LINE_SAFE = /[\r\n\0]/;
const NOT_SINGLE_LINE_SAFE_ALL = /[\r\n\0]/g;

/** The space after the colon is written always, so a value that itself starts with a space survives. */
const DATA_PREFIX = "data: ";
const DATA_LINE_BREAK = "\ndata: ";
const COMMENT_PREFIX = ": ";
const COMMENT_LINE_BREAK = "\n: ";

function hasLineBreak(text: string): boolean {
  return text.indexOf("\n") !== -1 || text.indexOf("\r") !== -1;
}

/** Makes a string safe as a single-line field value (id, event): removes CR, LF and NUL. */
export function singleLine(value: string): string {
  return NOT_SINGLE_LINE_SAFE.test(value) ? value.replace(NOT_SINGLE_LINE_SAFE_ALL, "") : value;
}

function assertRetry(ms: number): void {
  // Safe integers only: String(1e21) is "1e+21", which parsers must ignore (not all digits).
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new RangeError(`SSE retry must be a non-negative integer of milliseconds, got ${ms}`);
  }
}

/** `data:` lines for `data`, split where a parser would split them, so parsing joins them back with LF. */
function encodeData(data: string): string {
  if (!hasLineBreak(data)) return `${DATA_PREFIX + data}\n`;
  return `${DATA_PREFIX + data.replace(LINE_BREAK, DATA_LINE_BREAK)}\n`;
}

/** Encodes one event block ending with the blank line. Fields in order id, event, retry, data. */
export function encodeMessage(m: SseMessage): string {
  let block = "";
  if (m.id !== undefined) block += `id: ${singleLine(m.id)}\n`;
  if (m.event !== undefined) block += `event: ${singleLine(m.event)}\n`;
  if (m.retry !== undefined) {
    assertRetry(m.retry);
    block += `retry: ${m.retry}\n`;
  }
  // An empty string still gets its `data:` line: without one the parser would not dispatch the event.
  if (m.data !== undefined) block += encodeData(m.data);
  return `${block}\n`;
}

/** `: text\n\n` style comment; multi-line text gives one `:` line per line. encodeComment('ping') === ': ping\n\n' */
export function encodeComment(text: string): string {
  if (!hasLineBreak(text)) return `${COMMENT_PREFIX + text}\n\n`;
  return `${COMMENT_PREFIX + text.replace(LINE_BREAK, COMMENT_LINE_BREAK)}\n\n`;
}

/** 'retry: N\n\n' ; N must be a non-negative integer (throw RangeError otherwise) */
export function encodeRetry(ms: number): string {
  assertRetry(ms);
  return `retry: ${ms}\n\n`;
}
