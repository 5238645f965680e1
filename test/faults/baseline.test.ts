/**
 * No fault: the same traffic, clients and checks as every fault scenario, with nothing broken. It proves
 * the suite itself (proxies passing bytes, clients recording, checker agreeing) before any fault is blamed.
 */
import { expect, test } from "bun:test";
import { runScenario } from "./scenario.ts";

test("baseline: no fault, every client gets every acknowledged event once, in order", async () => {
  const result = await runScenario("baseline", async () => {
    await Bun.sleep(5000);
    return [];
  });
  expect(result.failures).toEqual([]);
  expect(result.verdict.acked).toBeGreaterThan(300);
}, 120_000);
