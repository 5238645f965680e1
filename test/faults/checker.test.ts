/**
 * The fault suite's checks on hand-made histories: what counts as missing, doubled, out of order or
 * crossing an epoch, and how gaps are measured and split by node.
 */
import { describe, expect, test } from "bun:test";
import { check, checkClient } from "./checker.ts";
import { gaps, longestGap, nodeAt } from "./gaps.ts";
import type { ClientHistory, Delivery } from "./history.ts";

/** A history from a compact script: "s:5" a snapshot with id 5, "s:" one without id, "7" an event. */
function client(script: string[], opts: { match?: string; gaveUp?: boolean; times?: number[]; nodes?: [number, string][] } = {}): ClientHistory {
  const deliveries: Delivery[] = script.map((step, i) => {
    const at = opts.times?.[i] ?? i;
    if (step.startsWith("s:")) return { kind: "snapshot", id: step.slice(2) || null, type: "snapshot", at };
    return { kind: "event", id: step, type: "play", at };
  });
  return {
    name: "c",
    match: opts.match ?? "m",
    deliveries,
    connections: (opts.nodes ?? [[0, "n1"]]).map(([openedAt, node]) => ({ openedAt, node })),
    drops: 0,
    gaveUp: opts.gaveUp ? { at: 0, reason: "Non-200 status code (503)" } : undefined,
  };
}

const ids = (from: number, to: number, tag = ""): string[] => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}${tag}`);

describe("checkClient", () => {
  test("everything after the starting snapshot, once, in order: clean", () => {
    const v = checkClient(client(["s:3", "4", "5", "6"]), ids(1, 6));
    expect(v).toMatchObject({ missing: [], duplicates: [], outOfOrder: [], epochCrossings: [], gaveUp: false });
  });

  test("ids at or before the start are not owed", () => {
    expect(checkClient(client(["s:5", "6"]), ids(1, 6)).missing).toEqual([]);
  });

  test("a missing id, a doubled one, one out of order", () => {
    const v = checkClient(client(["s:1", "2", "4", "4", "3", "5"]), ids(1, 6));
    expect(v.missing).toEqual(["6"]);
    expect(v.duplicates).toEqual(["4"]);
    expect(v.outOfOrder).toEqual(["3"]);
  });

  test("order is numeric, not by string", () => {
    expect(checkClient(client(["s:8", "9", "10", "11"]), ids(1, 11)).outOfOrder).toEqual([]);
  });

  test("a later snapshot in the same epoch does not excuse what it skipped", () => {
    expect(checkClient(client(["s:1", "2", "s:5", "6"]), ids(1, 6)).missing).toEqual(["3", "4", "5"]);
  });

  test("a new epoch entered through a snapshot: owed from the snapshot on", () => {
    const acked = [...ids(1, 4, "@a"), ...ids(1, 3, "@b")];
    const v = checkClient(client(["s:2@a", "3@a", "4@a", "s:1@b", "2@b", "3@b"]), acked);
    expect(v).toMatchObject({ missing: [], duplicates: [], outOfOrder: [], epochCrossings: [] });
  });

  test("a new epoch glued onto the old state without a snapshot crosses, and its ids stay owed", () => {
    const acked = [...ids(1, 4, "@a"), ...ids(1, 2, "@b")];
    const v = checkClient(client(["s:2@a", "3@a", "4@a", "1@b", "2@b"]), acked);
    expect(v.epochCrossings).toEqual(["1@b", "2@b"]);
    expect(v.missing).toEqual(["1@b", "2@b"]);
  });

  test("untagged ids are the current epoch; tagged ones after them cross", () => {
    const v = checkClient(client(["s:2", "3", "4@x"]), ["1", "2", "3", "4@x"]);
    expect(v.epochCrossings).toEqual(["4@x"]);
  });

  test("an epoch the client never entered is owed in full", () => {
    const acked = [...ids(1, 3, "@a"), ...ids(1, 2, "@b")];
    expect(checkClient(client(["s:3@a"]), acked).missing).toEqual(["1@b", "2@b"]);
  });

  test("epochs that ended before the client joined are not owed", () => {
    const acked = [...ids(1, 3, "@a"), ...ids(1, 2, "@b")];
    expect(checkClient(client(["s:1@b", "2@b"]), acked).missing).toEqual([]);
  });

  test("a snapshot with no id starts at 0 in the epoch of the next event", () => {
    const acked = [...ids(1, 2, "@a"), ...ids(1, 3, "@b")];
    const v = checkClient(client(["s:2@a", "s:", "2@b", "3@b"]), acked);
    expect(v.missing).toEqual(["1@b"]);
    expect(v.epochCrossings).toEqual([]);
  });

  test("an event before any snapshot has no position: it crosses", () => {
    expect(checkClient(client(["1"]), ["1"]).epochCrossings).toEqual(["1"]);
  });

  test("identity is the whole string: the same number in two epochs is two ids", () => {
    const acked = ["1@a", "2@a", "1@b", "2@b"];
    const v = checkClient(client(["s:1@a", "2@a", "s:", "1@b", "2@b"]), acked);
    expect(v).toMatchObject({ missing: [], duplicates: [], outOfOrder: [] });
  });
});

describe("check", () => {
  test("sums over clients, counts those that gave up, flags ids the log issued twice", () => {
    const acked = new Map([
      ["m", ["1", "2", "3", "1", "2"]],
      ["q", ["1@e"]],
    ]);
    const v = check([client(["s:1", "2", "3"]), client(["s:1", "2"], { gaveUp: true }), client(["s:", "1@e"], { match: "q" })], acked);
    expect(v.acked).toBe(6);
    expect(v.clients).toBe(3);
    expect(v.missing).toBe(1);
    expect(v.gaveUp).toBe(1);
    expect(v.reusedIds.sort()).toEqual(["1", "2"]);
    expect(v.ok).toBe(false);
  });

  test("a clean run is ok", () => {
    const v = check([client(["s:1", "2", "3"])], new Map([["m", ["1", "2", "3"]]]));
    expect(v.ok).toBe(true);
  });
});

describe("gaps", () => {
  test("the longest wait between deliveries in the window; a wait begun in it counts in full", () => {
    const c = client(["s:1", "2", "3", "4"], { times: [0, 100, 1100, 5000] });
    expect(longestGap(c, 50, 2000)).toBe(3900);
    expect(longestGap(c, 50, 1000)).toBe(1000);
  });

  test("no delivery after the last one: the wait ends at the window's end; none before: it starts at its start", () => {
    expect(longestGap(client(["s:1"], { times: [100] }), 0, 3000)).toBe(2900);
    expect(longestGap(client(["s:1"], { times: [2000] }), 500, 3000)).toBe(1500);
  });

  test("the node at the fault: the connection open then, or the first one after", () => {
    const c = client([], {
      nodes: [
        [0, "n1"],
        [10, "n2"],
        [20, "n3"],
      ],
    });
    expect(nodeAt(c, 15)).toBe("n2");
    expect(nodeAt(c, 5)).toBe("n1");
    expect(nodeAt(client([], { nodes: [[10, "n2"]] }), 5)).toBe("n2");
  });

  test("split between clients on healthy and faulted nodes", () => {
    const a = { ...client(["s:1", "2"], { times: [0, 400], nodes: [[0, "n1"]] }), name: "a" };
    const b = { ...client(["s:1", "2"], { times: [0, 900], nodes: [[0, "n2"]] }), name: "b" };
    const g = gaps([a, b], { from: 0, to: 1000, faultAt: 10, faultedNodes: new Set(["n2"]) });
    expect(g.healthy).toBe(600);
    expect(g.faulted).toBe(900);
    expect(gaps([a], { from: 0, to: 1000, faultAt: 10, faultedNodes: new Set(["n2"]) }).faulted).toBeNull();
  });
});
