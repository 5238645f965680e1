/**
 * Reading a stream request's refusal in the form a browser survives (src/http/refusal.ts): `200
 * text/event-stream` with `Connection: close`, a body of exactly `retry: <ms>`, then one
 * `touchline.refused` event without an id whose data is `{"error", "message", "retryAfterMs"}`
 * (retryAfterMs equal to the retry), then the end of the stream.
 *
 * The wait is the refusal's old Retry-After (seconds), at least RETRY_MS, plus up to 50% jitter: a
 * test that used to compare Retry-After compares the wait against the same figure with `expectWait`.
 */
import { expect } from "bun:test";
import type { SseConnection } from "./sse.ts";

export const REFUSED_EVENT = "touchline.refused";
/** RETRY_MS when a test leaves it alone (src/config/config.ts). */
export const DEFAULT_RETRY_MS = 1000;

export interface StreamRefusal {
  error: string;
  message: string;
  retryAfterMs: number;
}

/** True when `conn` is (so far) a refusal in the SSE form: a 200 stream whose first event is `touchline.refused`. */
export function isStreamRefusal(conn: SseConnection): boolean {
  return conn.status === 200 && conn.events[0]?.type === REFUSED_EVENT;
}

/**
 * Waits for the whole answer and checks it is a refusal in the SSE form, exactly; returns its data.
 * The wire is compared whole, so there is nothing else in it: no `id:` line, no snapshot, no comment.
 */
export async function streamRefusalOf(conn: SseConnection, timeoutMs = 5000): Promise<StreamRefusal> {
  await conn.until(() => conn.isEnded, timeoutMs, "the whole refusal stream");
  expect({ status: conn.status, body: conn.status === 200 ? "" : conn.body }).toEqual({ status: 200, body: "" });
  expect(conn.headers.get("content-type") ?? "").toStartWith("text/event-stream");
  expect((conn.headers.get("connection") ?? "").toLowerCase()).toBe("close");
  expect(conn.events.map((e) => e.type)).toEqual([REFUSED_EVENT]);
  const event = conn.events[0]!;
  expect(event.lastEventId).toBe("");
  const data = JSON.parse(event.data) as Record<string, unknown>;
  expect(Object.keys(data).sort()).toEqual(["error", "message", "retryAfterMs"]);
  expect(typeof data.error).toBe("string");
  expect(typeof data.message).toBe("string");
  expect(Number.isSafeInteger(data.retryAfterMs) && (data.retryAfterMs as number) >= 0).toBe(true);
  expect(conn.retries).toEqual([data.retryAfterMs as number]);
  expect(conn.bodyStart).toBe(`retry: ${data.retryAfterMs}\n\nevent: ${REFUSED_EVENT}\ndata: ${event.data}\n\n`);
  return data as unknown as StreamRefusal;
}

/**
 * The wait a refusal whose Retry-After was `retryAfterS` seconds asks for: from max(RETRY_MS, that)
 * to half as much again (the jitter).
 */
export function expectWait(retryAfterMs: number, retryAfterS: number, retryMs = DEFAULT_RETRY_MS): void {
  const base = Math.max(retryMs, retryAfterS * 1000);
  expect(retryAfterMs).toBeGreaterThanOrEqual(base);
  expect(retryAfterMs).toBeLessThanOrEqual(Math.round(base * 1.5));
}

/** A refusal in the SSE form with this error code, waiting as a Retry-After of `retryAfterS` would. */
export async function expectStreamRefusal(conn: SseConnection, expected: { error: string; retryAfterS: number; retryMs?: number }): Promise<StreamRefusal> {
  const refusal = await streamRefusalOf(conn);
  expect(refusal.error).toBe(expected.error);
  expectWait(refusal.retryAfterMs, expected.retryAfterS, expected.retryMs);
  return refusal;
}

/**
 * Since a refusal is a 200 too, a stream that must have been admitted is told apart by its first
 * event: waits for it (or the end) and checks there is one and it is not a refusal.
 */
export async function expectAdmitted(conn: SseConnection, timeoutMs = 5000): Promise<void> {
  await conn.until(() => conn.events.length > 0 || conn.isEnded, timeoutMs, "the first event of an admitted stream");
  expect({ status: conn.status, first: conn.events[0]?.type ?? "(no event)" }).toEqual({
    status: 200,
    first: expect.not.stringMatching(/^(touchline\.refused|\(no event\))$/),
  });
}

/** Whether a stream was admitted (not refused in either form), once its first event or its end is in. */
export async function wasAdmitted(conn: SseConnection, timeoutMs = 5000): Promise<boolean> {
  await conn.until(() => conn.events.length > 0 || conn.isEnded, timeoutMs, "the first event or the end");
  return conn.status === 200 && conn.events.length > 0 && !isStreamRefusal(conn);
}
