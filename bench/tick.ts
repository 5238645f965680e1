/**
 * The event every bench publisher sends and every subscriber checks. Peers relay the body as the
 * SSE `data`, so it already has Touchline's envelope shape `{"match","data","ts"}`; Touchline
 * builds that envelope itself from the published `data` and stamps `ts` at publish time.
 */

export interface Tick {
  match: string;
  seq: number;
  /** Publish time, ms since epoch. */
  ts: number;
}

/** The SSE data of one bench event, as a relaying peer delivers it. */
export function encodeTickEnvelope(match: string, seq: number, ts: number): string {
  return `{"match":${JSON.stringify(match)},"data":${encodeTickData(seq)},"ts":${ts}}`;
}

/** The application data carried by a bench event: a sequence increasing by one per channel. */
export function encodeTickData(seq: number): string {
  return `{"seq":${seq}}`;
}

/** The event type of every bench event published to Touchline. */
const TICK_TYPE = "tick";

/**
 * A Touchline publish of one bench event: the body of `POST /matches/{match}/events`, or, given its
 * match, an item of a `POST /events` batch.
 */
export function encodeTickPublish(seq: number, match?: string): string {
  const target = match === undefined ? "" : `"match":${JSON.stringify(match)},`;
  return `{${target}"type":"${TICK_TYPE}","data":${encodeTickData(seq)}}`;
}

/** Reads a delivered envelope; null when it is not a well-formed bench event. */
export function decodeTick(data: string): Tick | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null) return null;
  const envelope = parsed as { match?: unknown; data?: { seq?: unknown } | null; ts?: unknown };
  const seq = envelope.data?.seq;
  if (typeof envelope.match !== "string" || typeof seq !== "number" || typeof envelope.ts !== "number") return null;
  return { match: envelope.match, seq, ts: envelope.ts };
}
