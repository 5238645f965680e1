/**
 * A strict check of what a Touchline stream may carry, line by line: the node writes only `retry:`,
 * `id:`, `event:`, `data:` lines and `:` comments, LF line ends, one `data:` line per event holding a
 * JSON object. Anything else on the wire (another field name, a second data line, an unknown event
 * type) is a field injected by input that should have been escaped. The events themselves are read
 * with the project's spec parser (src/sse/parse.ts), as a browser would.
 */
import { SseParser, type SseEvent } from "../../src/sse/parse.ts";
import { COMPOSITE_ID, EVENT_ID, tagOf } from "../helpers/eventIds.ts";

export interface WireReport {
  events: SseEvent[];
  problems: string[];
}

const LINE = /^(?:retry: \d+|id: [^\r\n]*|event: [A-Za-z][A-Za-z0-9_.-]{0,63}|data: [^\r\n]*|: [^\r\n]*|)$/;

/**
 * Checks a stream's text as received so far (it may end mid-event, which is not a problem; the
 * unfinished tail is not checked). `matches` are the matches the stream was opened for (undefined:
 * not known, so not checked).
 */
export function checkSseWire(text: string, matches: readonly string[] | undefined): WireReport {
  const problems: string[] = [];
  if (text.includes("\r")) problems.push("a CR on the wire (the node writes LF line ends only)");
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  let dataLinesInEvent = 0;
  for (const line of complete.split("\n").slice(0, -1)) {
    if (!LINE.test(line)) problems.push(`unexpected line ${JSON.stringify(line.slice(0, 120))}`);
    if (line.startsWith("data: ")) dataLinesInEvent++;
    if (line === "") dataLinesInEvent = 0;
    if (dataLinesInEvent > 1) problems.push("an event with more than one data line");
  }
  const events: SseEvent[] = [];
  const tags = new Set<string>();
  const parser = new SseParser({ onEvent: (e) => events.push(e) });
  parser.feed(complete);
  for (const e of events) {
    let data: unknown;
    try {
      data = JSON.parse(e.data);
    } catch {
      problems.push(`event ${e.type} carries data that is not JSON: ${JSON.stringify(e.data.slice(0, 120))}`);
      continue;
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      problems.push(`event ${e.type} data is not a JSON object`);
      continue;
    }
    const match = (data as { match?: unknown }).match;
    if (matches && !e.type.startsWith("touchline.") && !matches.includes(String(match))) {
      problems.push(`event ${e.type} names match ${JSON.stringify(match)}, not one of the stream's`);
    }
    // An event id `<seq>@<tag>`, or a multiplexed stream's composite id `m1:12,m2:0@<tag>`.
    if (e.lastEventId !== "" && !EVENT_ID.test(e.lastEventId) && !COMPOSITE_ID.test(e.lastEventId))
      problems.push(`id ${JSON.stringify(e.lastEventId.slice(0, 120))} is not an event id`);
    else if (e.lastEventId !== "") tags.add(tagOf(e.lastEventId));
  }
  // One stream, one log: every id it carries names the same log incarnation.
  if (tags.size > 1) problems.push(`ids of one stream carry ${tags.size} log tags: ${[...tags].join(", ")}`);
  return { events, problems };
}
