/**
 * SIGTERM while NATS is gone: the node must still stop within its drain and a little more, not wait out
 * a request timeout at every step that would write to NATS (leaving the membership, the index's last
 * flush, giving leases back), which together ran past an orchestrator's grace period (12.7 s with 100
 * active matches and the default drain, measured by hand before the fix).
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode } from "../helpers/cluster.ts";
import { openSse } from "../helpers/sse.ts";
import { publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(60_000);

const DRAIN_NOTICE_MS = 300;
const DRAIN_MS = 500;
const MATCHES = 60;
/** Notice and drain, at most a second for each of the two NATS steps, and slack for a loaded machine. */
const STOP_WITHIN_MS = DRAIN_NOTICE_MS + DRAIN_MS + 2 * 1000 + 1500;

test("SIGTERM with NATS gone: the node still exits 0, within its drain and a little more", async () => {
  const nats = await startNats();
  const node = await startNode({ natsUrl: nats.url, env: { DRAIN_NOTICE: `${DRAIN_NOTICE_MS}ms`, DRAIN: `${DRAIN_MS}ms` } });
  try {
    // Owned matches (leases to give back) with index entries still to write, and a live stream.
    const matches = Array.from({ length: MATCHES }, () => uniqueMatch("gone"));
    await Promise.all(matches.map((m) => publishOk(node.url, m, { type: "kickoff" })));
    const stream = await openSse(`${node.url}/matches/${matches[0]}/events`);
    await stream.until(() => stream.snapshots.length === 1, 5000, "the snapshot");
    await Promise.all(matches.map((m) => publishOk(node.url, m, { type: "goal" })));

    await nats.stop();
    // The node notices (a disconnect) before it is told to stop.
    await Bun.sleep(500);
    const startedAt = Date.now();
    node.proc.kill("SIGTERM");
    const code = await node.proc.exited;
    const tookMs = Date.now() - startedAt;
    console.log(`stopped without NATS in ${tookMs} ms (bound ${STOP_WITHIN_MS} ms)`);
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(STOP_WITHIN_MS);
    await stream.until(() => stream.isEnded, 1000, "the stream ended");
  } finally {
    if (node.proc.exitCode === null) await node.kill();
    await nats.stop().catch(() => {});
  }
});
