import { expect, test } from "bun:test";
import { TurnPacer } from "./turnPacer.ts";

/** A hand-driven clock and event loop: `later` callbacks run only when the test ends the turn. */
class Loop {
  now = 0;
  private queued: (() => void)[] = [];

  later = (fn: () => void): void => {
    this.queued.push(fn);
  };

  /** Ends this turn: runs what was scheduled for the next one, then lets its microtasks settle. */
  async nextTurn(): Promise<void> {
    const due = this.queued;
    this.queued = [];
    for (const fn of due) fn();
    await Bun.sleep(0);
  }
}

/** A pacer of 10 ms per turn on a hand-driven loop, and the order in which opens ran. */
function pacedLoop(): { loop: Loop; pacer: TurnPacer; done: number[] } {
  const loop = new Loop();
  return { loop, pacer: new TurnPacer({ budgetMs: 10, now: () => loop.now, later: loop.later }), done: [] };
}

/** An open as the route runs it: waits its turn if told to, then spends `costMs` of the turn. */
function open(pacer: TurnPacer, loop: Loop, costMs: number, done: number[], id: number): void {
  const run = (): void => {
    loop.now += costMs;
    done.push(id);
  };
  const turn = pacer.turn();
  if (turn) void turn.then(run);
  else run();
}

test("a quiet node never waits: every open within the turn's budget goes at once", () => {
  const { loop, pacer, done } = pacedLoop();
  for (let i = 0; i < 5; i++) open(pacer, loop, 1, done, i);
  expect(done).toEqual([0, 1, 2, 3, 4]);
  expect(pacer.pending).toBe(0);
});

test("past the budget the rest wait for later turns, in arrival order, a budget's worth per turn", async () => {
  const { loop, pacer, done } = pacedLoop();
  // A storm: 35 opens of 1 ms each arrive in one turn.
  for (let i = 0; i < 35; i++) open(pacer, loop, 1, done, i);
  expect(done).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(pacer.pending).toBe(25);

  await loop.nextTurn();
  expect(done.length).toBe(20);
  await loop.nextTurn();
  expect(done.length).toBe(30);
  await loop.nextTurn();
  expect(done).toEqual(Array.from({ length: 35 }, (_, i) => i));
  expect(pacer.pending).toBe(0);
});

test("an open arriving while others wait queues behind them, even in a fresh turn", async () => {
  const { loop, pacer, done } = pacedLoop();
  for (let i = 0; i < 12; i++) open(pacer, loop, 5, done, i);
  expect(done).toEqual([0, 1]);
  open(pacer, loop, 5, done, 99);
  await loop.nextTurn();
  expect(done).toEqual([0, 1, 2, 3]);
  for (let t = 0; t < 6; t++) await loop.nextTurn();
  expect(done.at(-1)).toBe(99);
  expect(done.length).toBe(13);
});

test("once the storm is over, the next turn's first open goes at once again", async () => {
  const { loop, pacer, done } = pacedLoop();
  for (let i = 0; i < 15; i++) open(pacer, loop, 1, done, i);
  await loop.nextTurn();
  await loop.nextTurn();
  expect(done.length).toBe(15);
  loop.now += 1000;
  open(pacer, loop, 1, done, 100);
  expect(done.at(-1)).toBe(100);
});

test("with the real clock and event loop, a timer fires between the turns of a storm", async () => {
  const pacer = new TurnPacer({ budgetMs: 5 });
  const spin = (ms: number): void => {
    const until = performance.now() + ms;
    while (performance.now() < until) {}
  };
  let timerFiredAfter = -1;
  let finished = 0;
  setTimeout(() => {
    timerFiredAfter = finished;
  }, 1);
  // 60 opens of 1 ms arrive in one turn: unpaced, the timer would fire after all of them.
  const all: Promise<void>[] = [];
  for (let i = 0; i < 60; i++) {
    const turn = pacer.turn();
    const run = (): void => {
      spin(1);
      finished++;
    };
    if (turn) all.push(turn.then(run));
    else run();
  }
  await Promise.all(all);
  expect(finished).toBe(60);
  expect(timerFiredAfter).toBeGreaterThan(0);
  expect(timerFiredAfter).toBeLessThan(60);
});

test("while held, requests wait and go one per turn in arrival order; once the hold lifts, a budget's worth per turn", async () => {
  const loop = new Loop();
  let behind = true;
  const pacer = new TurnPacer({ budgetMs: 10, now: () => loop.now, later: loop.later, holdWhile: () => behind });
  const done: number[] = [];
  // Cheap batches: unheld, all six would go in this turn.
  for (let i = 0; i < 6; i++) open(pacer, loop, 1, done, i);
  expect(done).toEqual([]);
  await loop.nextTurn();
  expect(done).toEqual([0]);
  await loop.nextTurn();
  expect(done).toEqual([0, 1]);
  behind = false;
  await loop.nextTurn();
  expect(done).toEqual([0, 1, 2, 3, 4, 5]);
  expect(pacer.pending).toBe(0);
  // Not held and quiet (a turn later): the next one goes at once.
  await loop.nextTurn();
  loop.now += 1000;
  open(pacer, loop, 1, done, 6);
  expect(done.at(-1)).toBe(6);
});

test("a hold that never lifts slows requests down but never stops them", async () => {
  const loop = new Loop();
  const pacer = new TurnPacer({ budgetMs: 10, now: () => loop.now, later: loop.later, holdWhile: () => true });
  const done: number[] = [];
  for (let i = 0; i < 4; i++) open(pacer, loop, 1, done, i);
  for (let t = 0; t < 4; t++) await loop.nextTurn();
  expect(done).toEqual([0, 1, 2, 3]);
});
