/**
 * `touchline tail` against real nodes: one line per event, in order; after its node is killed it
 * resumes from the last id (events published meanwhile on another node arrive once, with no second
 * snapshot); Ctrl-C stops it with the id to resume from, and `--from` resumes there; it exits by itself
 * once the match has ended; several matches share one stream.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { EVENT_ID } from "../helpers/eventIds.ts";
import { publishOk, uniqueMatch } from "../integration/touchlineApi.ts";
import { RunningCli } from "./cli.ts";

setDefaultTimeout(60_000);

/** Short retry so the tail comes back quickly once its node is up again. */
const NODE_ENV = { RETRY_MS: "200" };
let nats: NatsFixture;
let a: NodeFixture;
let b: NodeFixture;

beforeAll(async () => {
  nats = await startNats();
  [a, b] = await Promise.all([startNode({ natsUrl: nats.url, env: NODE_ENV }), startNode({ natsUrl: nats.url, env: NODE_ENV })]);
}, 40_000);

afterAll(async () => {
  for (const n of [a, b]) if (n?.proc.exitCode === null) await n.kill();
  await nats?.stop();
});

interface Line {
  type: string;
  id: string;
  match: string;
  data?: unknown;
  state?: unknown;
}
const parsed = (tail: RunningCli): Line[] => tail.lines.map((l) => JSON.parse(l) as Line);

describe("touchline tail", () => {
  test("prints the snapshot, then one line per event as <id> <match> <type> <data>", async () => {
    const match = uniqueMatch("tail-text");
    const first = await publishOk(b.url, match, { type: "kickoff", data: null, state: { homeScore: 0 } });
    const tail = new RunningCli(["tail", match, "--url", a.url]);
    try {
      await tail.waitForLines(1);
      expect(tail.lines[0]).toBe(`${first} ${match} snapshot {"homeScore":0}`);
      const goal = await publishOk(b.url, match, { type: "goal", data: { player: "Saka" }, state: { homeScore: 1 } });
      await tail.waitForLines(2);
      expect(tail.lines[1]).toBe(`${goal} ${match} goal {"player":"Saka"}`);
      expect(tail.stderr).toContain(`connected to ${a.url}/matches/${match}/events`);
    } finally {
      await tail.stop();
    }
  });

  test("resumes from the last id after its node dies: every event once, in order, one snapshot", async () => {
    const match = uniqueMatch("tail-resume");
    const tail = new RunningCli(["tail", match, "--json", "--url", a.url]);
    try {
      await tail.waitForLines(1); // the snapshot of a match without events
      const before = [];
      for (let i = 1; i <= 3; i++) before.push(await publishOk(b.url, match, { type: "goal", data: { n: i } }));
      await tail.waitForLines(4);

      await a.kill();
      await tail.waitFor("a reconnect attempt", () => tail.stderr.includes("reconnecting in"));
      const whileDown = [];
      for (let i = 4; i <= 6; i++) whileDown.push(await publishOk(b.url, match, { type: "goal", data: { n: i } }));
      a = await startNode({ natsUrl: nats.url, port: a.port, env: NODE_ENV });
      await tail.waitForLines(7, 30_000);
      const live = await publishOk(b.url, match, { type: "goal", data: { n: 7 } });
      await tail.waitForLines(8);

      const lines = parsed(tail);
      expect(lines.filter((l) => l.type === "snapshot")).toHaveLength(1);
      expect(lines.slice(1).map((l) => l.id)).toEqual([...before, ...whileDown, live]);
      expect(lines.slice(1).map((l) => (l.data as { n: number }).n)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(tail.stderr).toContain(`resuming after ${before[2]}`);
      expect(tail.proc.exitCode).toBeNull();
    } finally {
      await tail.stop();
    }
  });

  test("Ctrl-C: exit 0 and the id to resume from; --from resumes there without a snapshot", async () => {
    const match = uniqueMatch("tail-stop");
    const tail = new RunningCli(["tail", match, "--json", "--url", a.url]);
    await tail.waitForLines(1);
    const seen = await publishOk(b.url, match, { type: "goal", data: { n: 1 } });
    await tail.waitForLines(2);
    tail.proc.kill("SIGINT");
    expect(await tail.exited).toBe(0);
    expect(tail.stderr).toContain(`stopped; resume with: touchline tail ${match} --from '${seen}'`);

    const missed = await publishOk(b.url, match, { type: "goal", data: { n: 2 } });
    const again = new RunningCli(["tail", match, "--json", "--from", seen, "--url", b.url]);
    try {
      await again.waitForLines(1);
      const later = await publishOk(a.url, match, { type: "goal", data: { n: 3 } });
      await again.waitForLines(2);
      expect(parsed(again).map((l) => [l.type, l.id])).toEqual([
        ["goal", missed],
        ["goal", later],
      ]);
    } finally {
      await again.stop();
    }
  });

  test("exits 0 by itself once the match has ended (final event, then touchline.end)", async () => {
    const match = uniqueMatch("tail-end");
    const tail = new RunningCli(["tail", match, "--url", a.url]);
    await tail.waitForLines(1);
    const final = await publishOk(b.url, match, { type: "fulltime", data: null, final: true });
    expect(await tail.exited).toBe(0);
    expect(tail.lines.at(-1)).toBe(`${final} ${match} fulltime null`);
    expect(tail.stderr).toContain("touchline.end");
    expect(tail.stderr).toContain(`match ${match} has ended`);

    // Resuming at the final id: the node answers 204, and tail says the match has ended.
    const after = new RunningCli(["tail", match, "--from", final, "--url", b.url]);
    expect(await after.exited).toBe(0);
    expect(after.lines).toEqual([]);
    expect(after.stderr).toContain("has ended");
  });

  test("several matches on one stream; quiet keeps stderr empty", async () => {
    const [m1, m2] = [uniqueMatch("tail-m1"), uniqueMatch("tail-m2")];
    const tail = new RunningCli(["tail", m1, m2, "--json", "--quiet", "--url", a.url]);
    try {
      await tail.waitForLines(2);
      expect(
        parsed(tail)
          .map((l) => [l.type, l.match])
          .sort(),
      ).toEqual([
        ["snapshot", m1],
        ["snapshot", m2],
      ]);
      await publishOk(b.url, m1, { type: "goal", data: { n: 1 } });
      await publishOk(b.url, m2, { type: "card", data: { n: 2 } });
      await tail.waitForLines(4);
      const events = parsed(tail).slice(2);
      // Each match's events come in order; the two matches' events may interleave either way (their
      // owners may be different nodes), so they are compared match by match.
      expect(events.map((l) => [l.match, l.type]).sort()).toEqual([
        [m1, "goal"],
        [m2, "card"],
      ]);
      expect(events.every((l) => l.id.length > 0 && !EVENT_ID.test(l.id))).toBe(true); // composite ids
      expect(tail.stderr).toBe("");
    } finally {
      await tail.stop();
    }
  });

  test("a wrong command line exits 2", async () => {
    const none = new RunningCli(["tail"]);
    expect(await none.exited).toBe(2);
    expect(none.stderr).toContain("give at least one match");
    const bad = new RunningCli(["tail", "not a match"]);
    expect(await bad.exited).toBe(2);
  });
});
