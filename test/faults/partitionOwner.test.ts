/**
 * The busy match's owner loses NATS for 20 s: its link is black-holed (process running, sockets open, no
 * byte either way, bytes held and delivered at the heal), then healed.
 */
import { expect, test } from "bun:test";
import { runScenario } from "./scenario.ts";

const PARTITION_MS = 20_000;

test("partition the busy match's owner from NATS for 20 s: every client still gets every acknowledged event once, in order", async () => {
  const result = await runScenario("partition-owner", async ({ cluster, busy }) => {
    const owner = await cluster.ownerOf(busy);
    owner.link.blackhole();
    await Bun.sleep(PARTITION_MS);
    owner.link.heal();
    return [owner.id];
  });
  expect(result.failures).toEqual([]);
}, 150_000);
