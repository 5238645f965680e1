import { describe, expect, test } from "bun:test";
import { OwnStoresWatch } from "./ownStoresWatch.ts";

describe("OwnStoresWatch", () => {
  test("acknowledgements one after another, the tail through the latest: quiet", () => {
    const w = new OwnStoresWatch(10);
    for (const seq of [11, 12, 13]) w.noteAck(seq, false);
    // Through 12 only: the tail would stop short of the last acknowledged.
    expect(w.endInterval(12)).toBe(false);
    expect(w.endInterval(13)).toBe(true);
  });

  test("an interval with no store at all and nothing handed on: quiet", () => {
    const w = new OwnStoresWatch(10);
    expect(w.endInterval(10)).toBe(true);
    expect(w.endInterval(10)).toBe(true);
  });

  test("a hole between acknowledgements (another writer stored between them): not quiet, once", () => {
    const w = new OwnStoresWatch(10);
    w.noteAck(11, false);
    w.noteAck(13, false);
    expect(w.endInterval(13)).toBe(false);
    // The next interval starts afresh.
    w.noteAck(14, false);
    expect(w.endInterval(14)).toBe(true);
  });

  test("a hole before the first acknowledgement counts from the position the watch began at", () => {
    const w = new OwnStoresWatch(10);
    w.noteAck(12, false);
    expect(w.endInterval(12)).toBe(false);
  });

  test("the tail behind the acknowledgements: not quiet (stopping it would lose what it has not handed on)", () => {
    const w = new OwnStoresWatch(10);
    w.noteAck(11, false);
    w.noteAck(12, false);
    expect(w.endInterval(11)).toBe(false);
    expect(w.endInterval(12)).toBe(true);
  });

  test("the tail past the acknowledgements during the interval (stores by another writer): not quiet until it stays put", () => {
    const w = new OwnStoresWatch(10);
    w.noteAck(11, false);
    expect(w.endInterval(15)).toBe(false);
    expect(w.endInterval(15)).toBe(true);
    expect(w.endInterval(16)).toBe(false);
  });

  test("a duplicate of a message past the latest acknowledgement was stored by someone else: not quiet", () => {
    const w = new OwnStoresWatch(10);
    w.noteAck(11, false);
    w.noteAck(14, true);
    expect(w.endInterval(14)).toBe(false);
    // The duplicate did not count as this node's: 12 still follows 11.
    w.noteAck(12, false);
    expect(w.endInterval(14)).toBe(true);
  });

  test("a duplicate of an older message changes nothing", () => {
    const w = new OwnStoresWatch(10);
    w.noteAck(11, false);
    w.noteAck(5, true);
    w.noteAck(12, false);
    expect(w.endInterval(12)).toBe(true);
  });
});
