import { expect, test } from "bun:test";
import { FlushScheduler } from "./flushScheduler.ts";

/** A stream that counts its flushes and the turn (by a counter the test advances) of each. */
class CountingStream {
  flushes: number[] = [];
  constructor(private readonly turn: () => number) {}
  flush(): void {
    this.flushes.push(this.turn());
  }
}

/** Resolves after `n` turns of the event loop. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

test("a pass over many streams writes a set number per turn of the event loop, each stream once", async () => {
  // The turn counter moves once per turn of the event loop: an immediate that schedules the next one.
  let turn = 0;
  let counting = true;
  const count = (): void => {
    turn++;
    if (counting) setImmediate(count);
  };
  setImmediate(count);
  const scheduler = new FlushScheduler(0, 1000);
  const streams = Array.from({ length: 2500 }, () => new CountingStream(() => turn));
  const turnsSeen: number[] = [];
  for (const s of streams) scheduler.add(s);
  await turns(10);
  counting = false;
  for (const s of streams) {
    expect(s.flushes.length).toBe(1);
    turnsSeen.push(s.flushes[0]!);
  }
  const distinct = [...new Set(turnsSeen)];
  expect(distinct.length).toBe(3);
  expect(turnsSeen.filter((t) => t === distinct[0]).length).toBe(1000);
  expect(turnsSeen.filter((t) => t === distinct[2]).length).toBe(500);
});

test("streams written to while a long pass is under way are written in that pass's later turns", async () => {
  const scheduler = new FlushScheduler(0, 1000);
  const first = Array.from({ length: 1500 }, () => new CountingStream(() => 0));
  for (const s of first) scheduler.add(s);
  // The pass has begun (its first thousand written) when a latecomer is added.
  await turns(1);
  const late = new CountingStream(() => 0);
  scheduler.add(late);
  await turns(6);
  expect(late.flushes.length).toBe(1);
  for (const s of first) expect(s.flushes.length).toBe(1);
  // And the scheduler is free again: a new write gets its own pass.
  scheduler.add(late);
  await turns(3);
  expect(late.flushes.length).toBe(2);
});
