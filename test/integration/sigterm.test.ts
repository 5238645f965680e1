/**
 * SIGTERM drains: /readyz says 503 at once, streams stay for DRAIN_NOTICE so a balancer notices, then
 * they are closed spread over DRAIN (clients see the end of the stream, after a short retry, and
 * reconnect elsewhere, not all in one instant), and the process exits 0.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openSse } from "../helpers/sse.ts";
import { publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

const DRAIN_NOTICE_MS = 300;
const DRAIN_MS = 1000;
/** Clients must see their stream end within this after SIGTERM (notice + drain + slack). */
const PROMPT_CLOSE_MS = DRAIN_NOTICE_MS + DRAIN_MS + 700;
const READYZ_PROBE_MS = 10;

let nats: NatsFixture;
let node: NodeFixture;

beforeAll(async () => {
  nats = await startNats();
  // A long heartbeat, so nothing but the drain can end an idle stream during the test.
  node = await startNode({ natsUrl: nats.url, env: { HEARTBEAT_MS: "60000", DRAIN_NOTICE: `${DRAIN_NOTICE_MS}ms`, DRAIN: `${DRAIN_MS}ms` } });
});

afterAll(async () => {
  if (node?.proc.exitCode === null) await node.kill();
  await nats?.stop();
});

test("SIGTERM: /readyz 503 at once, streams closed spread over DRAIN after the notice, and the node exits 0", async () => {
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
      const status = await fetch(`${node.url}/readyz`).then(
        (r) => r.status,
        () => "refused" as const,
      );
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
  // None before the notice is over; spread, not all in one instant.
  for (const ms of endTimes) expect(ms).toBeGreaterThanOrEqual(DRAIN_NOTICE_MS);
  expect(Math.max(...endTimes) - Math.min(...endTimes)).toBeGreaterThanOrEqual((DRAIN_MS * (streams.length - 1)) / streams.length / 2);
  expect(code).toBe(0);
  // The streams ended cleanly with what they had, not cut mid-event.
  for (const s of streams) expect(s.events.every((e) => e.type === "snapshot")).toBe(true);

  // 503 from the first probe that the signal could have reached (a probe already in flight may pass).
  const afterNotice = probes.filter((p) => p.sentAt >= termAt + 50);
  expect(afterNotice.filter((p) => p.status === 200)).toEqual([]);
  const drainingSeen = afterNotice.some((p) => p.status === 503);
  expect(drainingSeen).toBe(true);
  console.log(
    `sigterm: streams ended ${Math.min(...endTimes)}..${Math.max(...endTimes)} ms after SIGTERM (notice ${DRAIN_NOTICE_MS} ms, drain ${DRAIN_MS} ms); /readyz 503 throughout`,
  );
});
