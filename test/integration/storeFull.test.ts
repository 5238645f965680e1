/**
 * JetStream's storage runs full (a nats-server whose file store is capped): a publish JetStream refuses
 * is answered 503 `publish_failed` with Retry-After, saying nothing was stored, not "may or may not
 * have been stored"; the refusals are logged a line per few seconds, not a line each; the node stays
 * ready, and what it acknowledged is all there, in order, for a client resuming from the start.
 */
import { expect, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { readIds } from "../helpers/idStream.ts";

const MATCH = "full-1";
/** Events of about 20 KB: the 4 MB store holds a couple of hundred. */
const BODY = JSON.stringify({ type: "commentary", data: { text: "x".repeat(20_000) } });
const MAX_PUBLISHES = 600;
/** Refusals after the first, to see them counted rather than logged one by one. */
const REFUSALS = 100;

const { node } = useNode({ natsConfig: "jetstream { max_file_store: 4MB, max_memory_store: 64MB }\n", env: { LOG_LEVEL: "info" } });

function publish(): Promise<Response> {
  return fetch(`${node.url}/matches/${MATCH}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: BODY });
}

test("a full store: 503 publish_failed (not stored), logged once per interval, the node ready, every acknowledged event kept", async () => {
  const acknowledged: string[] = [];
  let refusal: Response | undefined;
  for (let i = 0; i < MAX_PUBLISHES && !refusal; i++) {
    const answer = await publish();
    if (answer.status === 201) acknowledged.push(((await answer.json()) as { id: string }).id);
    else refusal = answer;
  }
  expect(refusal).toBeDefined();
  expect(acknowledged.length).toBeGreaterThan(10);
  expect(refusal!.status).toBe(503);
  expect(refusal!.headers.get("retry-after")).toBe("5");
  const body = (await refusal!.json()) as { error: string; message: string };
  expect(body.error).toBe("publish_failed");
  expect(body.message).toContain("not stored");
  expect(body.message).toContain("insufficient resources");

  for (let i = 0; i < REFUSALS; i++) {
    const answer = await publish();
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: string }).error).toBe("publish_failed");
  }
  const lines = node
    .output()
    .split("\n")
    .filter((l) => l.includes("publish refused by JetStream"));
  // The first refusal at once, then one line per 5 s at most (the refusals above take well under 5 s).
  expect(lines.length).toBeGreaterThanOrEqual(1);
  expect(lines.length).toBeLessThanOrEqual(2);

  expect((await fetch(`${node.url}/readyz`)).status).toBe(200);

  // A client resuming from the first event reads exactly the rest of what was acknowledged, in order,
  // coming back by its last id when a replay is paged (about 4 MB here against a 1 MiB client buffer).
  const read: string[] = [];
  let lastEventId = acknowledged[0]!;
  for (let round = 0; round < 20 && lastEventId !== acknowledged.at(-1); round++) {
    const page = await readIds(`${node.url}/matches/${MATCH}/events`, { lastEventId, idleMs: 3_000, stopWhen: (ids) => ids.at(-1) === acknowledged.at(-1) });
    expect(page.status).toBe(200);
    read.push(...page.ids);
    lastEventId = read.at(-1) ?? lastEventId;
  }
  expect(read).toEqual(acknowledged.slice(1));
}, 90_000);
