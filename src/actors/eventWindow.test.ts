/** EventWindow and WindowBudget without a node: bounds by count, by bytes, and by a budget all windows share. */
import { expect, test } from "bun:test";
import { EventWindow, type WindowEvent } from "./eventWindow.ts";
import { WindowBudget } from "./windowBudget.ts";

interface FakeEvent extends WindowEvent {
  readonly seq: number;
}

/** Event `seq` following `prev`, counted as `bytes` long. */
function ev(seq: number, bytes = 10, prev = seq - 1): FakeEvent {
  return { seq, prev, size: bytes };
}

function pushRange(w: EventWindow<FakeEvent>, from: number, to: number, bytes = 10): void {
  for (let s = from; s <= to; s++) w.push(ev(s, bytes));
}

const seqs = (es: FakeEvent[] | undefined): number[] | undefined => es?.map((e) => e.seq);

test("bounded by count: keeps the newest, covers from the event before its oldest", () => {
  const w = new EventWindow<FakeEvent>(5);
  pushRange(w, 1, 20);
  expect(w.size).toBe(5);
  expect(w.coversFrom).toBe(15);
  expect(seqs(w.after(15))).toEqual([16, 17, 18, 19, 20]);
  expect(seqs(w.after(18))).toEqual([19, 20]);
  expect(w.after(20)).toEqual([]);
  // Memory does not reach back that far: the caller goes to JetStream.
  expect(w.after(14)).toBeUndefined();
  expect(seqs(w.newest(2))).toEqual([19, 20]);
});

test("an empty window covers nothing", () => {
  const w = new EventWindow<FakeEvent>(5, 100);
  expect(w.coversFrom).toBeUndefined();
  expect(w.after(0)).toBeUndefined();
  expect(w.newest(3)).toEqual([]);
});

test("bounded by bytes: large events leave fewer in the window", () => {
  const w = new EventWindow<FakeEvent>(1000, 350);
  pushRange(w, 1, 10, 100);
  expect(w.size).toBe(3);
  expect(w.bytes).toBe(300);
  expect(w.coversFrom).toBe(7);
  expect(seqs(w.after(7))).toEqual([8, 9, 10]);
  expect(w.after(6)).toBeUndefined();
});

test("an event larger than the window empties it; the window starts again after it", () => {
  const w = new EventWindow<FakeEvent>(1000, 350);
  pushRange(w, 1, 3, 100);
  w.push(ev(4, 400));
  expect(w.size).toBe(0);
  expect(w.after(3)).toBeUndefined();
  w.push(ev(5, 100));
  expect(w.coversFrom).toBe(4);
  expect(seqs(w.after(4))).toEqual([5]);
  expect(w.after(3)).toBeUndefined();
});

test("ids with gaps (other matches' sequences between them) are covered by prev, not by seq - 1", () => {
  const w = new EventWindow<FakeEvent>(2);
  w.push(ev(10, 10, 4));
  w.push(ev(17, 10, 10));
  w.push(ev(30, 10, 17));
  expect(w.coversFrom).toBe(10);
  expect(seqs(w.after(12))).toEqual([17, 30]);
  expect(w.after(9)).toBeUndefined();
});

test("the budget takes the oldest events of all windows first, whichever window is pushing", () => {
  const budget = new WindowBudget(1000);
  const quiet = new EventWindow<FakeEvent>(100, 10_000, budget);
  const busy = new EventWindow<FakeEvent>(100, 10_000, budget);
  pushRange(quiet, 1, 6, 100);
  pushRange(busy, 101, 106, 100);
  expect(budget.usedBytes).toBe(1000);
  // The quiet window's two oldest went to make room for the busy one's newest.
  expect(quiet.size).toBe(4);
  expect(quiet.coversFrom).toBe(2);
  expect(quiet.after(1)).toBeUndefined();
  expect(seqs(quiet.after(2))).toEqual([3, 4, 5, 6]);
  expect(busy.size).toBe(6);
  // Once the quiet window is gone, the busy one gives way to itself.
  pushRange(busy, 107, 112, 100);
  expect(quiet.size).toBe(0);
  expect(busy.size).toBe(10);
  expect(busy.coversFrom).toBe(102);
  expect(budget.usedBytes).toBe(1000);
});

test("a window's own caps and clear give bytes back to the budget", () => {
  const budget = new WindowBudget(10_000);
  const a = new EventWindow<FakeEvent>(3, 10_000, budget);
  const b = new EventWindow<FakeEvent>(100, 250, budget);
  pushRange(a, 1, 10, 100);
  pushRange(b, 11, 20, 100);
  expect(budget.usedBytes).toBe(300 + 200);
  expect(budget.liveEntries).toBe(5);
  a.clear();
  expect(budget.usedBytes).toBe(200);
  b.clear();
  expect(budget.usedBytes).toBe(0);
  expect(budget.liveEntries).toBe(0);
});

test("the budget's bookkeeping stays proportional to what is held, over 200,000 pushes", () => {
  const budget = new WindowBudget(5_000);
  const windows = Array.from({ length: 10 }, () => new EventWindow<FakeEvent>(8, 10_000, budget));
  const started = performance.now();
  for (let s = 1; s <= 200_000; s++) windows[s % 10]!.push(ev(s, 50 + (s % 7) * 10, s - 10));
  const usPerPush = ((performance.now() - started) * 1000) / 200_000;
  expect(budget.usedBytes).toBeLessThanOrEqual(5_000);
  expect(budget.usedBytes).toBe(windows.reduce((sum, w) => sum + w.bytes, 0));
  expect(budget.liveEntries).toBe(windows.reduce((sum, w) => sum + w.size, 0));
  expect(budget.queuedEntries).toBeLessThanOrEqual(2 * budget.liveEntries + 200);
  for (const w of windows) expect(w.size).toBeGreaterThan(0);
  expect(usPerPush).toBeLessThan(5);
});

test("a window dropped without clear() gives its bytes back once collected", async () => {
  const budget = new WindowBudget(1_000_000);
  (() => {
    const w = new EventWindow<FakeEvent>(100, 100_000, budget);
    pushRange(w, 1, 50, 100);
  })();
  expect(budget.usedBytes).toBe(5000);
  for (let i = 0; i < 50 && budget.usedBytes > 0; i++) {
    Bun.gc(true);
    await Bun.sleep(1);
  }
  expect(budget.usedBytes).toBe(0);
});
