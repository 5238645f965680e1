/**
 * What the integration tests need to talk to a real node besides streams: publishing, JSON reads,
 * metrics, the node process's memory, and a seeded random source so failures replay.
 */
import { readFileSync } from "node:fs";
import { seqOf } from "../helpers/eventIds.ts";
import { parsePrometheus } from "../helpers/promParse.ts";

export interface PublishBody {
  type: string;
  data?: unknown;
  state?: Record<string, unknown>;
  key?: string;
  final?: boolean;
}

export interface JsonAnswer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  json: T;
}

export async function readJson<T = Record<string, unknown>>(res: Response): Promise<JsonAnswer<T>> {
  const text = await res.text();
  let json: T;
  try {
    json = JSON.parse(text) as T;
  } catch {
    throw new Error(`expected JSON from ${res.url} (status ${res.status}), got ${JSON.stringify(text.slice(0, 200))}`);
  }
  return { status: res.status, headers: res.headers, json };
}

export async function getJson<T = Record<string, unknown>>(url: string, init?: RequestInit): Promise<JsonAnswer<T>> {
  return readJson<T>(await fetch(url, init));
}

export async function publish(baseUrl: string, match: string, body: PublishBody): Promise<JsonAnswer<{ id: string; duplicate?: boolean }>> {
  return readJson(
    await fetch(`${baseUrl}/matches/${match}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
}

/** Publishes and insists on 201; returns the event id. */
export async function publishOk(baseUrl: string, match: string, body: PublishBody): Promise<string> {
  const answer = await publish(baseUrl, match, body);
  if (answer.status !== 201) throw new Error(`publish to ${match} answered ${answer.status} ${JSON.stringify(answer.json)}`);
  return answer.json.id;
}

/**
 * Publishes `count` events from `workers` concurrent publishers (each publishing one after another);
 * returns the ids the node answered, in the order of `index` (not sorted).
 */
export async function publishConcurrently(
  baseUrl: string,
  match: string,
  count: number,
  workers: number,
  bodyOf: (index: number) => PublishBody,
  onAck?: (id: string, index: number) => void,
  /** At most this many publishes start per second, all workers together (unbounded when absent). */
  perSecond?: number,
): Promise<string[]> {
  const ids: string[] = new Array(count);
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        if (perSecond !== undefined) {
          const due = startedAt + (i * 1000) / perSecond - performance.now();
          if (due > 0) await Bun.sleep(due);
        }
        ids[i] = await publishOk(baseUrl, match, bodyOf(i));
        onAck?.(ids[i]!, i);
      }
    }),
  );
  return ids;
}

/**
 * Waits until the node reports `id` as the match's latest. The node's view of a match follows JetStream a
 * moment behind the publish acknowledgement; a snapshot taken in that moment is one event behind (the
 * event then follows live). Tests that pin a snapshot's id wait for this first.
 */
export async function untilLatest(baseUrl: string, match: string, id: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${baseUrl}/matches/${match}`);
    if (res.status === 200 && ((await res.json()) as { id: string }).id === id) return;
    if (Date.now() > deadline) throw new Error(`${match} did not reach ${id} within ${timeoutMs} ms`);
    await Bun.sleep(10);
  }
}

/** Event ids are `<seq>@<tag>`: compare them by sequence (an id of any other form throws). */
export function byId(a: string, b: string): number {
  return seqOf(a) - seqOf(b);
}

/** Reads one sample of a node's /metrics (summed over label sets that match `labels`). */
export async function metricValue(baseUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const families = parsePrometheus(text);
  let total = 0;
  let seen = false;
  for (const family of families.values()) {
    for (const s of family.samples) {
      if (s.name !== name) continue;
      if (!Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue;
      total += s.value;
      seen = true;
    }
  }
  if (!seen) throw new Error(`metric ${name}${JSON.stringify(labels)} not exposed`);
  return total;
}

/** Resident memory of a process, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

export { seededRandom } from "../helpers/seededRandom.ts";

/** A match id no other test in the run uses. */
export function uniqueMatch(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
