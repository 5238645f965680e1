/** EncodedEvent: the frame it keeps, the event read back from it, and windows holding the bytes they count. */
import { describe, expect, test } from "bun:test";
import { EncodedEvent } from "./encodedEvent.ts";
import { EventWindow } from "./eventWindow.ts";
import { WindowBudget } from "./windowBudget.ts";
import type { MatchEvent } from "../match/event.ts";

const TAG = "mx1abc";
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe("the frame", () => {
  const event: MatchEvent = {
    match: "final-2026",
    seq: 42,
    prev: 17,
    type: "goal",
    data: { minute: 12, player: "Müller ⚽" },
    state: { score: [1, 0] },
    ts: 1_700_000_000_000,
  };

  test("is the single-match stream's SSE message, and the body is it without the id line", () => {
    const e = new EncodedEvent(event, TAG);
    const body = `event: goal\ndata: {"match":"final-2026","data":{"minute":12,"player":"Müller ⚽"},"ts":1700000000000,"state":{"score":[1,0]}}\n\n`;
    expect(text(e.frame)).toBe(`id: 42@${TAG}\n${body}`);
    expect(text(e.bodyBytes)).toBe(body);
    // A view of the frame, not a copy.
    expect(e.bodyBytes.buffer).toBe(e.frame.buffer);
    expect(e.id).toBe(`42@${TAG}`);
  });

  test("reads back as the event it was made from, whatever it carries", () => {
    const events: MatchEvent[] = [
      event,
      { match: "m", seq: 1, prev: 0, type: "kickoff", data: null, ts: 5 },
      { match: "m", seq: 9, prev: 3, type: "a.b-c_d", data: "line one\nline two\r\n", ts: 6, private: true, final: true },
      { match: "m", seq: 10, prev: 9, type: "odds", data: [1.5, { "data: ": "\nevent: x\n\n" }], state: { odds: null }, ts: 7 },
    ];
    for (const e of events) expect(new EncodedEvent(e, TAG).decode()).toEqual(e);
  });

  test("keeps the fields the actor decides on", () => {
    const e = new EncodedEvent({ ...event, private: true, final: true }, TAG);
    expect([e.seq, e.prev, e.private, e.final]).toEqual([42, 17, true, true]);
    const plain = new EncodedEvent(event, TAG);
    expect([plain.private, plain.final]).toEqual([false, false]);
  });
});

describe("windows hold about the bytes they count", () => {
  /**
   * Windows filled past a shared budget by events built as the actor builds them (from a parsed
   * payload); the heap they hold, after a full collection, against what the budget counted. Before
   * events kept only their frame, the heap held 4.5 times the count for 1 KiB events and 8 times for
   * tiny ones (WINDOW_BUDGET_BYTES then bounded a small multiple of itself).
   */
  function heldAgainstCounted(textLength: number): { counted: number; held: number; events: number } {
    Bun.gc(true);
    const before = process.memoryUsage().heapUsed;
    const budget = new WindowBudget(16 * 1024 * 1024);
    const windows = Array.from({ length: 20 }, () => new EventWindow<EncodedEvent>(2000, 1024 * 1024, budget));
    let seq = 0;
    for (let round = 0; round < 2000; round++) {
      for (const [i, w] of windows.entries()) {
        seq++;
        const stored = JSON.stringify({ type: "tick", data: { round, text: "k".repeat(textLength) }, state: { minute: round } });
        const p = JSON.parse(stored) as { type: string; data: MatchEvent["data"]; state: MatchEvent["state"] };
        const e = new EncodedEvent({ match: `match-${i}`, seq, prev: seq - 1, type: p.type, data: p.data, state: p.state, ts: Date.now() }, TAG);
        void e.bodyBytes; // as a multiplexed stream asks for it
        w.push(e);
      }
    }
    Bun.gc(true);
    const held = process.memoryUsage().heapUsed - before;
    const events = windows.reduce((sum, w) => sum + w.size, 0);
    return { counted: budget.usedBytes, held, events };
  }

  for (const textLength of [1000, 20]) {
    test(`events of ${textLength} characters of text: held within 1.5x of counted`, () => {
      const { counted, held, events } = heldAgainstCounted(textLength);
      console.log(`${events} events of ${textLength} characters held: ${(held / 1e6).toFixed(1)} MB of heap for ${(counted / 1e6).toFixed(1)} MB counted`);
      expect(counted).toBeGreaterThan(8 * 1024 * 1024);
      expect(held).toBeLessThan(counted * 1.5);
    });
  }
});
