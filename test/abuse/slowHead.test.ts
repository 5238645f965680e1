/**
 * What docs/security.md ("Request heads") says of slowly sent heads (slowloris), measured: a connection that has not sent a
 * whole request head is closed by Bun after about 12 s, well before the stream idle timeout (twice
 * HEARTBEAT_MS plus 5 s, 35 s by default) that applies once a request is in.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";

setDefaultTimeout(60_000);

/** What docs/security.md promises, with room for a loaded machine. */
const CLOSED_WITHIN_MS = 15_000;
const NOT_BEFORE_MS = 8_000;

let nats: NatsFixture;
let node: NodeFixture;

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url });
});

afterAll(async () => {
  await node?.kill();
  await nats?.stop();
});

async function closedAfter(send: string | undefined): Promise<number> {
  const started = Date.now();
  let closedAt = 0;
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port: node.port,
    socket: {
      data() {},
      close() {
        closedAt = Date.now();
      },
    },
  });
  if (send) sock.write(send);
  while (!closedAt && Date.now() - started < CLOSED_WITHIN_MS + 5_000) await Bun.sleep(50);
  if (!closedAt) sock.end();
  return closedAt ? closedAt - started : Number.POSITIVE_INFINITY;
}

test("a partial request head and a silent connection are closed after about 12 s", async () => {
  const [partial, silent] = await Promise.all([closedAfter("GET /matches HTTP/1.1\r\nHost: x\r\n"), closedAfter(undefined)]);
  console.log(`slow head: partial head closed after ${partial} ms, silent connection after ${silent} ms`);
  for (const ms of [partial, silent]) {
    expect(ms).toBeGreaterThanOrEqual(NOT_BEFORE_MS);
    expect(ms).toBeLessThanOrEqual(CLOSED_WITHIN_MS);
  }
});
