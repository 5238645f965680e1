import { expect, test } from "bun:test";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { PipelinedRequests } from "./pipelinedRequests.ts";

/** A connection that records what is published, each publish taking `costUs` of CPU (a cold client). */
function recordingConnection(costUs: number): { nc: NatsConnection; sent: string[] } {
  const sent: string[] = [];
  const nc = {
    subscribe: () => ({ unsubscribe() {} }),
    publish(subject: string) {
      const until = performance.now() + costUs / 1000;
      while (performance.now() < until) {}
      sent.push(subject);
    },
  } as unknown as NatsConnection;
  return { nc, sent };
}

const kind = {
  answer: (msg: Msg) => msg.string(),
  timedOut: (ms: number) => new Error(`no answer in ${ms} ms`),
  closed: { after: "closed", waiting: "closed while waiting" },
};

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Nothing answers here: every request is rejected by `close` at the end, which the tests expect. */
function ask(requests: PipelinedRequests<string>, subject: string): void {
  requests.request(subject, "x").catch(() => {});
}

test("a long queue leaves over several turns, in the order asked, later requests behind it", async () => {
  const { nc, sent } = recordingConnection(20);
  const requests = new PipelinedRequests(nc, 60_000, kind);
  for (let i = 0; i < 2000; i++) ask(requests, `s.${i}`);
  await nextTurn();
  // 2,000 sends of 20 µs are 40 ms: the first turn stops near its 2 ms.
  expect(sent.length).toBeGreaterThan(0);
  expect(sent.length).toBeLessThan(500);
  ask(requests, "s.late");
  for (let turns = 0; sent.length < 2001 && turns < 1000; turns++) await nextTurn();
  expect(sent).toEqual([...Array.from({ length: 2000 }, (_, i) => `s.${i}`), "s.late"]);
  requests.close();
});

test("under a steady overload the requests already sent are let go", async () => {
  const { nc, sent } = recordingConnection(20);
  const requests = new PipelinedRequests(nc, 60_000, kind);
  const queued = () => (requests as unknown as { queue: unknown[] }).queue.length;
  // More asked for every turn than a turn sends: the queue never runs empty.
  for (let turn = 0; turn < 20; turn++) {
    for (let i = 0; i < 150; i++) ask(requests, `s.${turn}.${i}`);
    await nextTurn();
  }
  expect(sent.length).toBeGreaterThan(0);
  expect(queued()).toBe(20 * 150 - sent.length);
  requests.close();
});

test("a short queue leaves in one turn", async () => {
  const { nc, sent } = recordingConnection(0);
  const requests = new PipelinedRequests(nc, 60_000, kind);
  for (let i = 0; i < 100; i++) ask(requests, `s.${i}`);
  await nextTurn();
  expect(sent.length).toBe(100);
  requests.close();
});
