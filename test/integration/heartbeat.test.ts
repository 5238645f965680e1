/**
 * Long idle streams survive: with HEARTBEAT_MS=1000 a stream left idle longer than Bun's 10 s idle
 * timeout is kept open by `: ping` comments and still delivers events afterwards.
 */
import { expect, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse } from "../helpers/sse.ts";
import { publishOk, uniqueMatch } from "./touchlineApi.ts";

const HEARTBEAT_MS = 1000;
/** Longer than Bun.serve's default 10 s idle timeout. */
const IDLE_MS = 12_000;

const { node } = useNode({ env: { HEARTBEAT_MS: String(HEARTBEAT_MS) } });

test(`an idle stream outlives ${IDLE_MS / 1000} s on heartbeats and still delivers`, async () => {
  const match = uniqueMatch("idle");
  const first = await publishOk(node.url, match, { type: "kickoff" });
  const s = await openSse(`${node.url}/matches/${match}/events`);
  await s.untilEvents(1);
  expect(s.events[0]!.lastEventId).toBe(first);
  await Bun.sleep(IDLE_MS);
  expect(s.isEnded).toBe(false);
  // About one ping per second of silence: none missing for long enough to let an idle timer fire.
  expect(s.comments.length).toBeGreaterThanOrEqual(Math.floor(IDLE_MS / HEARTBEAT_MS) - 3);
  expect(s.comments.every((c) => c === "ping")).toBe(true);
  for (let i = 1; i < s.commentTimes.length; i++) expect(s.commentTimes[i]! - s.commentTimes[i - 1]!).toBeLessThan(HEARTBEAT_MS * 2.5);

  const later = await publishOk(node.url, match, { type: "goal", data: { after: "idle" } });
  await s.untilEvents(2, 5000);
  await s.close();
  expect(s.events[1]!.lastEventId).toBe(later);
  expect(s.events[1]!.type).toBe("goal");
}, 30_000);
