/**
 * NATS itself goes away for ~2 s and comes back with its store (an upgrade, a crash and restart): every
 * node loses it at once, so every client counts as on a faulted node.
 */
import { expect, test } from "bun:test";
import { runScenario } from "./scenario.ts";

const DOWN_MS = 2000;

test("restart NATS (about 2 s down, same store): every client still gets every acknowledged event once, in order", async () => {
  const result = await runScenario("nats-restart", async ({ cluster }) => {
    await cluster.nats.restart(DOWN_MS);
    return cluster.nodes.map((n) => n.id);
  });
  expect(result.failures).toEqual([]);
}, 150_000);
