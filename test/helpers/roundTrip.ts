/**
 * One event's round trip through real nodes: a stream opened on one node, the event published through
 * another (or the same), read back on the stream by its id. Proof that a node stores and delivers, not
 * only that it answers /readyz.
 */
import { expect } from "bun:test";

const ROUND_TRIP_TIMEOUT_MS = 10_000;

/** Opens `${streamUrl}/matches/${match}/events`, publishes through `publishUrl`, and reads until the event's id arrives. */
export async function deliversOneEvent(publishUrl: string, streamUrl: string, match: string): Promise<void> {
  const stream = await fetch(`${streamUrl}/matches/${match}/events`, { signal: AbortSignal.timeout(ROUND_TRIP_TIMEOUT_MS) });
  expect(stream.status).toBe(200);
  const reader = stream.body!.getReader();
  const published = await fetch(`${publishUrl}/matches/${match}/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "goal", data: { minute: 1 } }),
  });
  expect(published.status).toBe(201);
  const { id } = (await published.json()) as { id: string };
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes(`id: ${id}\n`)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream on ${streamUrl} ended before event ${id}:\n${text}`);
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
}
