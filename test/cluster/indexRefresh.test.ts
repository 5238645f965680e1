/**
 * The other nodes' copy of the match index (behind their `GET /matches`): a new match and an ended one
 * reach it within about a second, a change to a listed match within INDEX_REFRESH, coalesced with the
 * changes after it (one write for them all instead of one per event). Read on the node that does not
 * own the match: the owner writes the entries, and its own listing is current at once.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startCluster, type ClusterFixture, type NodeFixture } from "../helpers/cluster.ts";
import { getJson, publishOk, uniqueMatch } from "../integration/touchlineApi.ts";

setDefaultTimeout(60_000);

const REFRESH_MS = 3_000;
/** The index flushes once a second; a new or ended match's entry goes out at the next flush. */
const FLUSH_MS = 1_000;
const POLL_MS = 50;

let cluster: ClusterFixture;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { INDEX_REFRESH: `${REFRESH_MS}ms` } });
});

afterAll(async () => {
  await cluster?.stop();
});

interface Listed {
  match: string;
  state: Record<string, unknown>;
  ended?: boolean;
}

async function listed(node: NodeFixture, match: string): Promise<Listed | undefined> {
  const answer = await getJson<{ matches: Listed[] }>(`${node.url}/matches?limit=1000`);
  return answer.json.matches.find((m) => m.match === match);
}

/** Ms until `node` lists `match` as `seen` says, polling from now; throws past `timeoutMs`. */
async function msUntil(node: NodeFixture, match: string, seen: (m: Listed | undefined) => boolean, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (seen(await listed(node, match))) return performance.now() - started;
    await Bun.sleep(POLL_MS);
  }
  throw new Error(`${node.nodeId} did not list ${match} as expected within ${timeoutMs} ms`);
}

async function ownerAndOther(match: string): Promise<{ owner: NodeFixture; other: NodeFixture }> {
  const [a, b] = cluster.nodes as [NodeFixture, NodeFixture];
  const { json } = await getJson<{ owner: string }>(`${a.url}/cluster/owner/${match}`);
  return json.owner === a.nodeId ? { owner: a, other: b } : { owner: b, other: a };
}

test("a new match reaches the other node within about a second; its changes within INDEX_REFRESH, together; its end within about a second", async () => {
  const match = uniqueMatch("refresh");
  const { owner, other } = await ownerAndOther(match);
  await publishOk(owner.url, match, { type: "kickoff", data: {}, state: { score: [0, 0] } });
  expect(await msUntil(other, match, (m) => m !== undefined, FLUSH_MS * 3)).toBeLessThan(FLUSH_MS * 3);

  // Three changes in a row: the owner lists the newest at once, the other node only once it is due,
  // and then the newest of them (one write for the three).
  const changed = performance.now();
  for (const score of [
    [1, 0],
    [2, 0],
    [2, 1],
  ]) {
    await publishOk(owner.url, match, { type: "goal", data: {}, state: { score } });
  }
  expect((await listed(owner, match))?.state).toEqual({ score: [2, 1] });
  const seenAfter = await msUntil(other, match, (m) => JSON.stringify(m?.state) !== JSON.stringify({ score: [0, 0] }), REFRESH_MS + FLUSH_MS * 3);
  expect((await listed(other, match))?.state).toEqual({ score: [2, 1] });
  // Not written at each event: the other node saw nothing of the changes for most of INDEX_REFRESH.
  expect(performance.now() - changed).toBeGreaterThan(REFRESH_MS - FLUSH_MS);
  expect(seenAfter).toBeLessThan(REFRESH_MS + FLUSH_MS * 3);

  // The end does not wait for the refresh.
  await publishOk(owner.url, match, { type: "full-time", data: {}, state: { score: [2, 2] }, final: true });
  expect(await msUntil(other, match, (m) => m?.ended === true, FLUSH_MS * 3)).toBeLessThan(FLUSH_MS * 3);
  expect((await listed(other, match))?.state).toEqual({ score: [2, 2] });
});
