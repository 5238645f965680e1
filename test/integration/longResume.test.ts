/**
 * The longest resume a multiplexed stream can need fits: a stock EventSource on 64 matches with
 * 64-character ids resumes by itself with a ~5 KB composite Last-Event-ID (it used to get a 431 and
 * stop for good), and the node refuses at start-up a MAX_MATCHES_PER_STREAM whose resume could not fit
 * under Bun's own head limit.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { EventSource } from "eventsource";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { publishOk } from "./touchlineApi.ts";

setDefaultTimeout(90_000);

const MATCHES = 64;
const BUN = process.execPath;

let nats: NatsFixture;
let node: NodeFixture;

beforeAll(async () => {
  nats = await startNats();
  // Rotation makes the EventSource reconnect by itself, with its composite Last-Event-ID.
  node = await startNode({ natsUrl: nats.url, env: { MAX_STREAM_AGE: "10s" } });
});

afterAll(async () => {
  await node?.kill();
  await nats?.stop();
});

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

test(`an EventSource on ${MATCHES} matches with 64-character ids resumes by itself with its composite id, exactly`, async () => {
  const run = Date.now().toString(36);
  const matches = Array.from({ length: MATCHES }, (_, i) => `${run}-${String(i).padStart(2, "0")}-`.padEnd(64, "x"));
  for (const m of matches) await publishOk(node.url, m, { type: "kickoff" });
  const es = new EventSource(`${node.url}/events?${matches.map((m) => `match=${m}`).join("&")}`);
  const goals = new Map<string, number[]>();
  let lastId = "";
  let opens = 0;
  let gaveUp = false;
  es.addEventListener("open", () => opens++);
  es.addEventListener("goal", (e) => {
    const { match, data } = JSON.parse(e.data) as { match: string; data: { n: number } };
    goals.set(match, [...(goals.get(match) ?? []), data.n]);
    lastId = e.lastEventId;
  });
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) gaveUp = true;
  });
  try {
    await until(() => opens === 1, 10_000, "the stream");
    // Sequences in the thousands for every match, so the composite id is near its longest.
    for (let n = 1; n <= 2; n++) for (const m of matches) await publishOk(node.url, m, { type: "goal", data: { n } });
    await until(() => matches.every((m) => goals.get(m)?.length === 2), 20_000, "the first goals");
    const resumeIdBytes = lastId.length;
    await until(() => opens >= 2 || gaveUp, 20_000, "the rotation's reconnect");
    for (const m of matches) await publishOk(node.url, m, { type: "goal", data: { n: 3 } });
    await until(() => gaveUp || matches.every((m) => goals.get(m)?.length === 3), 20_000, "the goals after the resume");
    expect(gaveUp).toBe(false);
    for (const m of matches) expect(goals.get(m)).toEqual([1, 2, 3]);
    expect(resumeIdBytes).toBeGreaterThan(4000);
    console.log(
      `long resume: ${MATCHES} matches, a ${resumeIdBytes}-byte composite Last-Event-ID, resumed by the EventSource itself after ${opens - 1} reconnect(s)`,
    );
  } finally {
    es.close();
  }
});

test("a MAX_MATCHES_PER_STREAM whose resume could not fit under Bun's head limit stops the node at start-up with one line", async () => {
  const proc = Bun.spawn([BUN, "run", "src/main.ts"], {
    cwd: `${import.meta.dir}/../..`,
    env: { ...process.env, MAX_MATCHES_PER_STREAM: "200", NATS_URL: nats.url, PORT: "0" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const code = await proc.exited;
  const stderr = await new Response(proc.stderr).text();
  expect(code).toBe(2);
  expect(stderr).toContain("invalid MAX_MATCHES_PER_STREAM");
  expect(stderr).toContain("--max-http-header-size");
});
