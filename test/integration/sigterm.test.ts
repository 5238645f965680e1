/**
 * SIGTERM drains: open streams are closed promptly (clients see the end of the stream and reconnect
 * elsewhere at once), the node stops being ready, and the process exits 0.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openSse } from "../helpers/sse.ts";
import { publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

/** Clients must see their stream end within this after SIGTERM. */
const PROMPT_CLOSE_MS = 2000;
const READYZ_PROBE_MS = 10;

let nats: NatsFixture;
let node: NodeFixture;

beforeAll(async () => {
  nats = await startNats();
  // A long heartbeat, so nothing but the drain can end an idle stream during the test.
  node = await startNode({ natsUrl: nats.url, env: { HEARTBEAT_MS: "60000" } });
});

afterAll(async () => {
  if (node?.proc.exitCode === null) await node.kill();
  await nats?.stop();
});

test("SIGTERM closes open streams within 2 s, /readyz stops answering 200, and the node exits 0", async () => {
  const a = uniqueMatch("term");
  const b = uniqueMatch("term2");
  await publishOk(node.url, a, { type: "kickoff" });
  const streams = await Promise.all([
    ...Array.from({ length: 5 }, () => openSse(`${node.url}/matches/${a}/events`)),
    openSse(`${node.url}/matches/${b}/events`),
    openSse(`${node.url}/events?match=${a}&match=${b}`),
  ]);
  await Promise.all(streams.map((s) => s.untilEvents(1)));

  const probes: { sentAt: number; status: number | "refused" }[] = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      const sentAt = Date.now();
      const status = await fetch(`${node.url}/readyz`).then((r) => r.status, () => "refused" as const);
      probes.push({ sentAt, status });
      await Bun.sleep(READYZ_PROBE_MS);
    }
  })();

  await Bun.sleep(50);
  const termAt = Date.now();
  const exitCode = node.stop();
  const endTimes = await Promise.all(streams.map((s) => s.ended.then(() => Date.now() - termAt)));
  const code = await exitCode;
  probing = false;
  await prober;

  for (const ms of endTimes) expect(ms).toBeLessThan(PROMPT_CLOSE_MS);
  expect(code).toBe(0);
  // The streams ended cleanly with what they had, not cut mid-event.
  for (const s of streams) expect(s.events.every((e) => e.type === "snapshot")).toBe(true);

  const firstEnd = termAt + Math.min(...endTimes);
  const afterStreamsClosed = probes.filter((p) => p.sentAt >= firstEnd);
  expect(afterStreamsClosed.filter((p) => p.status === 200)).toEqual([]);
  const drainingSeen = probes.some((p) => p.sentAt >= termAt && p.status === 503);
  console.log(
    `sigterm: streams ended ${Math.min(...endTimes)}..${Math.max(...endTimes)} ms after SIGTERM; /readyz 503 while draining ${drainingSeen ? "observed" : "not observed (the drain was quicker than the probe)"}`,
  );
});
