/**
 * The opt-in stream greeting: with `?hello=1` a stream carries `event: touchline.hello` naming the node
 * that serves it, right after `retry:` and before any snapshot, with no id line (so Last-Event-ID never
 * moves). Without it the contract's order (retry, then snapshot) is untouched.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { dataOf, openSse } from "../helpers/sse.ts";
import { publishOk, uniqueMatch, untilLatest } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

const { node } = useNode();

/** The frames at the start of an event-stream body (split at blank lines), in wire order. */
function leadingFrames(bodyStart: string): string[] {
  return bodyStart.split("\n\n").filter((frame) => frame.trim() !== "");
}

describe("touchline.hello", () => {
  test("/matches/{m}/events?hello=1: retry, then hello naming the node (no id), then the snapshot", async () => {
    const match = uniqueMatch("hello");
    const latest = await publishOk(node.url, match, { type: "kickoff", state: { minute: 0 } });
    await untilLatest(node.url, match, latest);
    const stream = await openSse(`${node.url}/matches/${match}/events?hello=1`);
    await stream.untilEvents(2);
    await stream.close();

    const clusterNode = ((await (await fetch(`${node.url}/cluster`)).json()) as { node: string }).node;
    const [hello, snapshot] = stream.events;
    expect(hello!.type).toBe("touchline.hello");
    expect(dataOf<{ node: string }>(hello!)).toEqual({ node: clusterNode });
    expect(clusterNode).toBe(node.nodeId);
    expect(hello!.lastEventId).toBe("");
    expect(snapshot!.type).toBe("snapshot");
    expect(snapshot!.lastEventId).toBe(latest);
    const frames = leadingFrames(stream.bodyStart);
    expect(frames[0]).toMatch(/^retry: \d+$/);
    expect(frames[1]).toBe(`event: touchline.hello\ndata: {"node":"${node.nodeId}"}`);
    expect(frames[2]).toStartWith("id: ");
  });

  test("/events?hello=1 (multiplexed): hello first, then one snapshot per match", async () => {
    const a = uniqueMatch("helloa");
    const b = uniqueMatch("hellob");
    await publishOk(node.url, a, { type: "kickoff" });
    await publishOk(node.url, b, { type: "kickoff" });
    const stream = await openSse(`${node.url}/events?match=${a}&match=${b}&hello=1`);
    await stream.untilEvents(3);
    await stream.close();
    expect(stream.events.map((e) => e.type)).toEqual(["touchline.hello", "snapshot", "snapshot"]);
    expect(dataOf<{ node: string }>(stream.events[0]!).node).toBe(node.nodeId);
    expect(stream.events[0]!.lastEventId).toBe("");
  });

  test("a resumed stream with hello=1 greets first, then replays exactly after the id", async () => {
    const match = uniqueMatch("helloresume");
    const first = await publishOk(node.url, match, { type: "kickoff" });
    const second = await publishOk(node.url, match, { type: "goal", data: { team: "home" } });
    const stream = await openSse(`${node.url}/matches/${match}/events?hello=1`, { headers: { "last-event-id": first } });
    await stream.untilEvents(2);
    await stream.close();
    expect(stream.events.map((e) => [e.type, e.lastEventId])).toEqual([
      ["touchline.hello", ""], // no id line: a browser's EventSource keeps the id it resumed with
      ["goal", second],
    ]);
  });

  test("without hello=1 nothing changes: retry, then the snapshot, no greeting", async () => {
    const match = uniqueMatch("nohello");
    await publishOk(node.url, match, { type: "kickoff" });
    for (const url of [`${node.url}/matches/${match}/events`, `${node.url}/matches/${match}/events?hello=0`, `${node.url}/events?match=${match}`]) {
      const stream = await openSse(url);
      await stream.untilEvents(1);
      await stream.close();
      expect(stream.events[0]!.type).toBe("snapshot");
      const frames = leadingFrames(stream.bodyStart);
      expect(frames[0]).toMatch(/^retry: \d+$/);
      expect(frames[1]).toStartWith("id: ");
      expect(stream.bodyStart).not.toContain("touchline.hello");
    }
  });
});
