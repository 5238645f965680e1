import { expect, test } from "bun:test";
import type { BucketEntry, BucketWatch } from "../bus/bucketWatch.ts";
import type { OrderedReader } from "../bus/orderedReader.ts";
import { decodeWire, encodeWire } from "../bus/wireCodec.ts";
import type { IndexEntry } from "../actors/services.ts";
import { MatchIndex } from "./matchIndex.ts";

/** A watch this test feeds by hand: what the bucket would deliver, one entry at a time. */
function handWatch(): { watch: BucketWatch; deliver: (e: Partial<BucketEntry> & { key: string }) => void } {
  let onEntry: ((e: BucketEntry) => void) | undefined;
  let revision = 0;
  return {
    watch: async (f) => {
      onEntry = f;
      return { stop: () => {} } as unknown as OrderedReader;
    },
    deliver: (e) =>
      onEntry!({
        operation: "PUT",
        revision: ++revision,
        created: new Date(),
        value: new Uint8Array(),
        isUpdate: true,
        string: () => "",
        json: <T>() => ({}) as T,
        ...e,
      }),
  };
}

const entry = (seq: number): IndexEntry => ({ seq, ts: Date.now(), state: { minute: seq } });

test("a match's first entry through the watch is announced once; later entries and other matches' are not repeated", async () => {
  const { watch, deliver } = handWatch();
  const announced: [string, number][] = [];
  const index = new MatchIndex(
    async () => {},
    watch,
    60_000,
    () => {},
    { onNewMatch: (match, e) => announced.push([match, e.seq]) },
  );
  await index.start();
  deliver({ key: "a", value: encodeWire(entry(1)) });
  deliver({ key: "a", value: encodeWire(entry(2)) });
  deliver({ key: "b", value: encodeWire(entry(7)) });
  deliver({ key: "c", value: new TextEncoder().encode("not an entry") });
  expect(announced).toEqual([
    ["a", 1],
    ["b", 7],
  ]);
  expect(index.get("a")?.seq).toBe(2);
  // Deleted (retention), then active again: new again.
  deliver({ key: "a", operation: "DEL" });
  deliver({ key: "a", value: encodeWire(entry(9)) });
  expect(announced.at(-1)).toEqual(["a", 9]);
  await index.stop();
});

test("an entry this node wrote itself is not announced when the watch brings it back", async () => {
  const { watch, deliver } = handWatch();
  const announced: string[] = [];
  const index = new MatchIndex(
    async () => {},
    watch,
    60_000,
    () => {},
    { onNewMatch: (match) => announced.push(match) },
  );
  await index.start();
  index.write("mine", entry(3));
  deliver({ key: "mine", value: encodeWire(entry(3)) });
  expect(announced).toEqual([]);
  await index.stop();
});

test("failed writes of one flush are reported once, with how many and the first; the rest of the flush is written", async () => {
  const { watch } = handWatch();
  const reports: [number, string][] = [];
  const written: string[] = [];
  const put = async (key: string) => {
    if (key.startsWith("down")) throw new Error("no JetStream acknowledgement");
    written.push(key);
  };
  const index = new MatchIndex(put, watch, 60_000, (failed, first) => reports.push([failed, first.match]));
  await index.start();
  for (let i = 0; i < 300; i++) index.write(`down${i}`, entry(i + 1));
  index.write("up", entry(1));
  await index.flush();
  expect(reports).toEqual([[300, "down0"]]);
  expect(written).toEqual(["up"]);
  await index.flush(); // nothing noted since: nothing written, nothing reported
  expect(reports).toHaveLength(1);
  await index.stop();
});

test("a final event published through this node ends the match here at once, leaving seq and state to the owner's entry, which keeps it; it is never written", async () => {
  const { watch } = handWatch();
  const written: Record<string, unknown>[] = [];
  const index = new MatchIndex(
    async (_key, value) => {
      written.push(JSON.parse(JSON.stringify(decodeWire(value))));
    },
    watch,
    60_000,
    () => {},
  );
  await index.start();
  index.write("m", entry(4));
  index.noteEndedHere("m", 9, "k-final");
  expect(index.get("m")).toEqual({ ...entry(4), ts: index.get("m")!.ts, endedHere: { seq: 9, key: "k-final" } });
  // The owner applies the final event: its entry, with the final state, keeps what this node knows.
  const final: IndexEntry = { seq: 9, ts: Date.now(), state: { minute: 90 }, ended: true };
  index.write("m", final);
  expect(index.get("m")).toEqual({ ...final, endedHere: { seq: 9, key: "k-final" } });
  await index.flush();
  expect(written).toEqual([{ ...final }]);
  // A match this node knew nothing of: ended here, with no state claimed.
  index.noteEndedHere("n", 3, undefined);
  expect(index.get("n")?.seq).toBe(0);
  expect(index.get("n")?.endedHere).toEqual({ seq: 3 });
  await index.stop();
});

test("stopping writes what is still noted on shutdown, and drops it when the log started over", async () => {
  for (const flush of [true, false]) {
    const { watch } = handWatch();
    const written: string[] = [];
    const index = new MatchIndex(
      async (key) => {
        written.push(key);
      },
      watch,
      60_000,
      () => {},
    );
    await index.start();
    index.write("a", entry(3));
    index.write("b", entry(4));
    await index.stop(flush);
    expect(written).toEqual(flush ? ["a", "b"] : []);
  }
});

test("entries carry the log's tag: those of another log incarnation are ignored, untagged ones are taken", async () => {
  const { watch, deliver } = handWatch();
  const written: Record<string, unknown>[] = [];
  const announced: string[] = [];
  const index = new MatchIndex(
    async (_key, value) => {
      written.push(decodeWire(value));
    },
    watch,
    60_000,
    () => {},
    { onNewMatch: (match) => announced.push(match), logTag: "tag-new" },
  );
  await index.start();
  deliver({ key: "lost", value: encodeWire({ ...entry(90), tag: "tag-old" }) });
  deliver({ key: "current", value: encodeWire({ ...entry(5), tag: "tag-new" }) });
  deliver({ key: "untagged", value: encodeWire(entry(7)) });
  expect(index.get("lost")).toBeUndefined();
  expect(index.get("current")?.seq).toBe(5);
  expect(index.get("current")).not.toHaveProperty("tag");
  expect(index.get("untagged")?.seq).toBe(7);
  expect(announced).toEqual(["current", "untagged"]);
  index.write("mine", entry(8));
  await index.flush();
  expect(written).toEqual([{ ...entry(8), ts: written[0]!.ts, tag: "tag-new" }]);
  await index.stop();
});

test("entries with no event within retention are dropped once a minute (the bucket's max age does not tell the watch)", () => {
  const RETENTION_MS = 3_600_000;
  const index = new MatchIndex(
    async () => {},
    handWatch().watch,
    60_000,
    () => {},
    { retentionMs: RETENTION_MS },
  );
  const now = Date.now();
  index.noteLocal("live", { seq: 5, ts: now - 1000, state: {} });
  index.noteLocal("expired", { seq: 3, ts: now - RETENTION_MS - 1000, state: { score: [2, 2] } });
  // Noted, not yet written: kept until its write, whatever its age.
  index.write("unwritten", { seq: 1, ts: now - RETENTION_MS - 1000, state: {} });
  expect(index.list(10, undefined).items.map(([m]) => m)).toEqual(["live"]);
  expect(index.pruneIfDue(now)).toBe(0); // less than a minute since the index began
  expect(index.pruneIfDue(now + 60_000)).toBe(1);
  expect(index.get("expired")).toBeUndefined();
  expect(index.get("live")?.seq).toBe(5);
  expect(index.get("unwritten")?.seq).toBe(1);
  expect(index.pruneIfDue(now + 90_000)).toBe(0); // the next sweep is a minute later
});

test("new and ended matches are written at the next flush; a change to a listed match waits for its refresh, with the changes after it", async () => {
  const REFRESH_MS = 300;
  const written: [string, number][] = [];
  const index = new MatchIndex(
    async (key, value) => {
      written.push([key, decodeWire<IndexEntry>(value).seq]);
    },
    handWatch().watch,
    60_000,
    () => {},
    {},
    REFRESH_MS,
  );
  await index.start();
  index.write("new", entry(1));
  await index.flush();
  expect(written).toEqual([["new", 1]]);
  // Listed now: its next changes wait, and go out together as the newest.
  index.write("new", entry(2));
  index.write("new", entry(3));
  index.write("other", entry(1));
  await index.flush();
  expect(written).toEqual([
    ["new", 1],
    ["other", 1],
  ]);
  // Still listed here at once.
  expect(index.get("new")?.seq).toBe(3);
  await Bun.sleep(REFRESH_MS + 50);
  await index.flush();
  expect(written.slice(2)).toEqual([["new", 3]]);
  // An ended match does not wait.
  index.write("other", { ...entry(2), ended: true });
  await index.flush();
  expect(written.slice(3)).toEqual([["other", 2]]);
  // On stop, whatever is noted is written, due or not.
  index.write("new", entry(4));
  await index.stop();
  expect(written.slice(4)).toEqual([["new", 4]]);
});
