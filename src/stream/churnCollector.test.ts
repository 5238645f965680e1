import { describe, expect, test } from "bun:test";
import { ChurnCollector } from "./churnCollector.ts";

/** A collector whose timer never fires during a test (checks are driven by hand). */
function collector(threshold: number) {
  let collections = 0;
  const c = new ChurnCollector({ threshold, quietMs: 3_600_000, collect: () => collections++ });
  return { c, collections: () => collections };
}

describe("ChurnCollector", () => {
  test("collects once, at the first quiet check after churn reached the threshold", () => {
    const { c, collections } = collector(3);
    for (let i = 0; i < 3; i++) c.note();
    c.check(); // churn since the last check: not quiet yet
    expect(collections()).toBe(0);
    c.check(); // a whole interval without churn
    expect(collections()).toBe(1);
    c.check();
    c.check();
    expect(collections()).toBe(1);
    c.stop();
  });

  test("never while churn goes on, however much of it", () => {
    const { c, collections } = collector(3);
    for (let tick = 0; tick < 50; tick++) {
      c.note();
      c.note();
      c.check();
    }
    expect(collections()).toBe(0);
    c.check();
    expect(collections()).toBe(1);
    c.stop();
  });

  test("churn below the threshold never triggers one, and the count starts over after a collection", () => {
    const { c, collections } = collector(5);
    for (let i = 0; i < 4; i++) c.note();
    c.check();
    c.check();
    expect(collections()).toBe(0);
    c.note(); // the fifth, in a later burst: the bursts add up
    c.check();
    c.check();
    expect(collections()).toBe(1);
    for (let i = 0; i < 4; i++) c.note();
    c.check();
    c.check();
    expect(collections()).toBe(1);
    c.stop();
  });
});
