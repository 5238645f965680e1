/**
 * The match event model shared by every layer: what a producer sends, what JetStream stores, and what
 * flows between nodes and to subscribers.
 */
import type { Json } from "./mergePatch.ts";

export const MATCH_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** Types the server emits itself; producers may not use them. */
export const SNAPSHOT_TYPE = "snapshot";
const RESERVED_PREFIX = "touchline.";

export function isReservedType(type: string): boolean {
  return type === SNAPSHOT_TYPE || type.startsWith(RESERVED_PREFIX);
}

/** What a producer publishes (HTTP body, or the JSON payload of a message sent straight to NATS). */
export interface PublishInput {
  type: string;
  data: Json;
  state?: Json;
  key?: string;
  ts?: number;
  private?: boolean;
  /** The last event of the match: after it the match is ended (streams end, publishing answers 409). */
  final?: boolean;
}

/** One stored event. `seq` is the JetStream stream sequence: the event id, the same on every node. */
export interface MatchEvent {
  match: string;
  seq: number;
  /** seq of the previous event of this match (0 when none is retained): lets a receiver detect a gap. */
  prev: number;
  type: string;
  data: Json;
  state?: Json;
  ts: number;
  /** Set by a producer to make the match private (subscribing then needs a token). */
  private?: boolean;
  /** The match's last event (see PublishInput.final). */
  final?: boolean;
}

/**
 * Event ids are `<seq>@<tag>`: the JetStream sequence, and the tag of the log incarnation that stored
 * it (logTag below). A store lost and recreated starts its sequences again at 1 under a new tag, so an
 * id of the old log is never resumed against the new one: it is an unknown id (a snapshot). Ids
 * without a tag (issued before tags existed) are taken as the current log's.
 */
export function formatEventId(seq: number, tag: string): string {
  return `${seq}@${tag}`;
}

const EVENT_ID = /^(\d{1,16})(?:@([0-9a-z]{1,16}))?$/;

/**
 * Parses a single-match event id. Undefined for anything that is not a positive integer, or that a
 * different log incarnation than `tag` issued.
 */
export function parseEventId(raw: string | null | undefined, tag?: string): number | undefined {
  const m = raw ? EVENT_ID.exec(raw) : null;
  if (!m) return undefined;
  if (m[2] !== undefined && tag !== undefined && m[2] !== tag) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** A log's tag, from the moment its stream was created: short, and different for every incarnation. */
export function logTag(created: Date): string {
  return created.getTime().toString(36);
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; message: string };

const MAX_KEY_LENGTH = 128;

/** Validates a producer's JSON body. Pure: the HTTP layer and the direct-NATS path share it. */
export function validatePublishInput(body: unknown): ValidationResult<PublishInput> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, message: 'body must be a JSON object like {"type":"goal","data":{...}}' };
  }
  const b = body as Record<string, unknown>;
  if (typeof b.type !== "string" || !EVENT_TYPE.test(b.type)) {
    return { ok: false, message: "type must match ^[A-Za-z][A-Za-z0-9_.-]{0,63}$" };
  }
  if (isReservedType(b.type)) {
    return { ok: false, message: `type "${b.type}" is reserved for the server (snapshot, touchline.*)` };
  }
  if (b.key !== undefined && (typeof b.key !== "string" || b.key.length === 0 || b.key.length > MAX_KEY_LENGTH)) {
    return { ok: false, message: `key must be a non-empty string of at most ${MAX_KEY_LENGTH} characters` };
  }
  if (b.state !== undefined && (typeof b.state !== "object" || b.state === null || Array.isArray(b.state))) {
    return { ok: false, message: "state must be a JSON merge patch object" };
  }
  if (b.private !== undefined && typeof b.private !== "boolean") {
    return { ok: false, message: "private must be a boolean" };
  }
  if (b.final !== undefined && typeof b.final !== "boolean") {
    return { ok: false, message: "final must be a boolean" };
  }
  const out: PublishInput = { type: b.type, data: (b.data ?? null) as Json };
  if (b.state !== undefined) out.state = b.state as Json;
  if (typeof b.key === "string") out.key = b.key;
  if (b.private === true) out.private = true;
  if (b.final === true) out.final = true;
  return { ok: true, value: out };
}
