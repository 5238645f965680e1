/**
 * Nodes started together against a fresh NATS all create the same stream and buckets at once. On one
 * server two such creates can race: both pass the server's "exists?" check and the loser is refused with
 * "subjects overlap with an existing stream". It once stopped a node in CI; every racer must come up.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { setUpStream } from "../../src/bus/streamSetup.ts";
import { startNats, type NatsFixture } from "../helpers/cluster.ts";

setDefaultTimeout(60_000);

/** Racers per bucket, like nodes of a scaled compose service starting at once. */
const RACERS = 6;
/** Fresh buckets raced for: without the retry, 9 to 12 of 600 races lost a racer here. */
const BUCKETS = 600;

let nats: NatsFixture;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  nats = await startNats();
  for (let i = 0; i < RACERS; i++) conns.push(await connect({ servers: nats.url }));
});

afterAll(async () => {
  for (const nc of conns) await nc.close();
  await nats?.stop();
});

test("racing creates of one new bucket all succeed, each racer holding a usable bucket", async () => {
  const managers = await Promise.all(conns.map((nc) => jetstreamManager(nc)));
  const retries: string[] = [];
  const failures: string[] = [];
  for (let b = 0; b < BUCKETS; b++) {
    const name = `race_${b}`;
    const results = await Promise.allSettled(
      conns.map((nc, i) =>
        setUpStream(
          managers[i]!,
          `KV_${name}`,
          () => new Kvm(nc).create(name, { history: 1 }),
          (err) => retries.push(String(err)),
        ),
      ),
    );
    for (const r of results) {
      if (r.status === "rejected") failures.push(`${name}: ${String(r.reason)}`);
      else await r.value.put("k", `v${b}`);
    }
  }
  expect(failures).toEqual([]);
  // Retries happen only for the race this guards against.
  for (const r of retries) expect(r).toMatch(/subjects overlap|TimeoutError/);
  const streams = await managers[0]!.streams.names().next();
  expect(streams.filter((s) => s.startsWith("KV_race_")).length).toBe(BUCKETS);
});
