/**
 * A node that does not own the busy match loses NATS for 20 s (black hole, then heal): its own clients
 * follow the match through it, so it must catch up or hand them over, and nobody else may notice.
 */
import { expect, test } from "bun:test";
import { runScenario } from "./scenario.ts";

const PARTITION_MS = 20_000;

test("partition a follower of the busy match from NATS for 20 s: every client still gets every acknowledged event once, in order", async () => {
  const result = await runScenario("partition-follower", async ({ cluster, busy }) => {
    const owner = await cluster.ownerOf(busy);
    const follower = cluster.nodes.find((n) => n.id !== owner.id)!;
    follower.link.blackhole();
    await Bun.sleep(PARTITION_MS);
    follower.link.heal();
    return [follower.id];
  });
  expect(result.failures).toEqual([]);
}, 150_000);
