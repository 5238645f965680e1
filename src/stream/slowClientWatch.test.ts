/**
 * SlowClientWatch with a fake clock and fake streams: a stream is cut for staying over the cap past the
 * grace, or at once past the ceiling; a burst over the cap that drains in time is never cut.
 */
import { afterEach, expect, test } from "bun:test";
import { SlowClientWatch, type SlowCut, type Watched } from "./slowClientWatch.ts";

const CAP = 1000;
const CEILING = 4000;
const GRACE_MS = 2000;

class FakeStream implements Watched {
  open = true;
  unsentBytes = 0;
  closedAs: string | undefined;
  close(reason: "slow"): void {
    this.closedAs = reason;
    this.open = false;
  }
}

let clock = 0;
const cuts: SlowCut[] = [];
let watch: SlowClientWatch | undefined;

function newWatch(graceMs = GRACE_MS): SlowClientWatch {
  clock = 0;
  cuts.length = 0;
  watch = new SlowClientWatch(
    { capBytes: CAP, ceilingBytes: CEILING, graceMs },
    (c) => cuts.push(c),
    () => clock,
  );
  return watch;
}

/** A write that leaves the stream holding `unsent` bytes. */
function write(w: SlowClientWatch, s: FakeStream, unsent: number): boolean {
  s.unsentBytes = unsent;
  return w.judge(s, unsent);
}

afterEach(() => watch?.stop());

test("under the cap nothing is tracked", () => {
  const w = newWatch();
  const s = new FakeStream();
  expect(write(w, s, CAP)).toBe(false);
  expect(w.size).toBe(0);
});

test("a burst over the cap that drains within the grace is never cut", () => {
  const w = newWatch();
  const s = new FakeStream();
  expect(write(w, s, 3 * CAP)).toBe(false);
  clock += GRACE_MS - 1;
  s.unsentBytes = 0; // the client read it all
  w.check();
  expect(w.size).toBe(0);
  // Over again later: the grace starts over.
  clock += 10_000;
  expect(write(w, s, 2 * CAP)).toBe(false);
  clock += GRACE_MS - 1;
  expect(write(w, s, 2 * CAP)).toBe(false);
  expect(s.closedAs).toBeUndefined();
  expect(cuts).toEqual([]);
});

test("a write that finds the stream back under the cap resets its grace", () => {
  const w = newWatch();
  const s = new FakeStream();
  write(w, s, 2 * CAP);
  clock += GRACE_MS - 100;
  write(w, s, CAP / 2);
  clock += 200;
  expect(write(w, s, 2 * CAP)).toBe(false);
  expect(s.open).toBe(true);
});

test("over the cap past the grace: cut at the next write", () => {
  const w = newWatch();
  const s = new FakeStream();
  write(w, s, 2 * CAP);
  clock += GRACE_MS;
  expect(write(w, s, 2 * CAP + 10)).toBe(true);
  expect(s.closedAs).toBe("slow");
  expect(cuts).toEqual([{ unsentBytes: 2 * CAP + 10, overMs: GRACE_MS, pastCeiling: false }]);
  expect(w.size).toBe(0);
});

test("over the cap past the grace with no write since: cut by the periodic check", () => {
  const w = newWatch();
  const s = new FakeStream();
  write(w, s, 2 * CAP);
  clock += GRACE_MS / 2;
  w.check();
  expect(s.open).toBe(true);
  clock += GRACE_MS / 2;
  w.check();
  expect(s.closedAs).toBe("slow");
  expect(cuts).toHaveLength(1);
});

test("past the ceiling: cut at once, whatever the grace", () => {
  const w = newWatch();
  const s = new FakeStream();
  expect(write(w, s, CEILING + 1)).toBe(true);
  expect(cuts).toEqual([{ unsentBytes: CEILING + 1, overMs: 0, pastCeiling: true }]);
});

test("a grace of 0 cuts on the first write over the cap (the old behaviour)", () => {
  const w = newWatch(0);
  const s = new FakeStream();
  expect(write(w, s, CAP + 1)).toBe(true);
});

test("a stream closed for another reason is forgotten, never cut", () => {
  const w = newWatch();
  const s = new FakeStream();
  write(w, s, 2 * CAP);
  s.open = false;
  clock += GRACE_MS;
  w.check();
  expect(cuts).toEqual([]);
  expect(w.size).toBe(0);
});

test("the periodic check runs on its own while a stream is over the cap", async () => {
  const real = new SlowClientWatch({ capBytes: CAP, ceilingBytes: CEILING, graceMs: 40 }, (c) => cuts.push(c));
  watch = real;
  cuts.length = 0;
  const s = new FakeStream();
  write(real, s, 2 * CAP);
  await Bun.sleep(150);
  expect(s.closedAs).toBe("slow");
  expect(real.size).toBe(0);
});
