/**
 * A NATS server that takes smaller messages than an event (its max_payload, here 16 KiB): the event is
 * refused with 413 event_too_large naming the sizes, nothing is stored (a batch with one such item
 * stores none of its items), the node stays ready and takes the next event, and it warned at connect
 * that its settings allow more than NATS takes. Before, such a publish answered 503
 * publish_outcome_unknown ("may or may not have been stored"), which sends a producer retrying forever.
 */
import { expect, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";

const MAX_PAYLOAD = 16 * 1024;
const BIG = "x".repeat(20_000);

const { node } = useNode({ natsConfig: `max_payload: ${MAX_PAYLOAD}\n`, env: { LOG_LEVEL: "info" } });

async function publish(match: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${node.url}/matches/${match}/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test("the node warns at connect that its settings allow larger messages than NATS takes", () => {
  const line = node
    .output()
    .split("\n")
    .find((l) => l.includes("the NATS server takes smaller messages (max_payload) than these settings allow"));
  expect(line).toBeDefined();
  expect(line).toContain(`"maxPayload":${MAX_PAYLOAD}`);
  expect(line).toContain("MAX_BODY_BYTES=65536, MAX_STATE_BYTES=65536");
});

test("an event past max_payload: 413 event_too_large naming both sizes, nothing stored, the next event stored", async () => {
  for (const key of [undefined, "big-1"]) {
    const refused = await publish("mp-single", { type: "goal", data: { pad: BIG }, ...(key ? { key } : {}) });
    expect(refused.status).toBe(413);
    expect(refused.body.error).toBe("event_too_large");
    expect(String(refused.body.message)).toMatch(/takes \d+ bytes as a message, more than this cluster's NATS server takes \(its max_payload, 16384 bytes\)/);
  }
  expect((await fetch(`${node.url}/matches/mp-single`)).status).toBe(404);

  const stored = await publish("mp-single", { type: "goal", data: { pad: "small" } });
  expect(stored.status).toBe(201);
  expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
  const state = (await (await fetch(`${node.url}/matches/mp-single`)).json()) as { id: string };
  expect(state.id).toBe(stored.body.id as string);
});

test("a batch with one item past max_payload: 413 naming its index, none of its items stored", async () => {
  const res = await fetch(`${node.url}/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([
      { match: "mp-b1", type: "goal", data: 1 },
      { match: "mp-b2", type: "goal", data: { pad: BIG }, key: "k2" },
      { match: "mp-b3", type: "goal", data: 3 },
    ]),
  });
  expect(res.status).toBe(413);
  const body = (await res.json()) as { error: string; message: string; index: number };
  expect(body.error).toBe("event_too_large");
  expect(body.index).toBe(1);
  expect(body.message).toStartWith("item 1 takes ");
  for (const match of ["mp-b1", "mp-b2", "mp-b3"]) expect((await fetch(`${node.url}/matches/${match}`)).status).toBe(404);

  const retried = await fetch(`${node.url}/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([
      { match: "mp-b1", type: "goal", data: 1 },
      { match: "mp-b3", type: "goal", data: 3 },
    ]),
  });
  expect(retried.status).toBe(201);
});
