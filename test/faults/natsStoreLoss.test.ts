/**
 * NATS is stopped, its store deleted, and started again on the same port: the JetStream stream and
 * buckets are gone, ids start again in a new epoch. Nodes must recover without a restart (publishes are
 * acknowledged again), and a client resuming with an id of the old log must get a snapshot of the new
 * one, never new events glued onto old state.
 *
 * Publishing pauses, and every client is first given everything acknowledged, before the store goes:
 * events acknowledged and then lost with the store could not be owed to anyone, and this scenario is
 * about what happens after the loss.
 */
import { expect, test } from "bun:test";
import { parseId } from "./history.ts";
import { runScenario } from "./scenario.ts";

const DOWN_MS = 2000;

test("lose the NATS store: nodes recover without a restart, clients move to the new epoch through a snapshot", async () => {
  let deliveredBefore = false;
  const result = await runScenario("nats-store-loss", async ({ cluster, publisher, allDelivered }) => {
    publisher.pause();
    await publisher.settle(10_000);
    deliveredBefore = await allDelivered(10_000);
    await cluster.loseNatsStore(DOWN_MS);
    publisher.resume();
    return cluster.nodes.map((n) => n.id);
  });
  expect(result.failures).toEqual([]);
  expect(deliveredBefore).toBe(true);
  // The scenario did reach a new log: the busy match has acknowledged ids of two epochs.
  const epochs = new Set(result.acked.get(result.busy)!.map((id) => parseId(id).epoch));
  expect(epochs.size).toBe(2);
}, 150_000);
