/**
 * The busy match's owner is paused for 20 s (SIGSTOP, then SIGCONT): it holds its sockets and answers
 * nothing, like a node stuck in a long GC or a frozen VM, then wakes up believing nothing happened.
 */
import { expect, test } from "bun:test";
import { runScenario } from "./scenario.ts";

const PAUSE_MS = 20_000;

test("pause the busy match's owner for 20 s: every client still gets every acknowledged event once, in order", async () => {
  const result = await runScenario("pause-owner", async ({ cluster, busy }) => {
    const owner = await cluster.ownerOf(busy);
    owner.fixture.proc.kill("SIGSTOP");
    try {
      await Bun.sleep(PAUSE_MS);
    } finally {
      owner.fixture.proc.kill("SIGCONT");
    }
    return [owner.id];
  });
  expect(result.failures).toEqual([]);
}, 150_000);
