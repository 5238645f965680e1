/**
 * Publish throughput (issue 12): how fast one Touchline node stores events, against the limit set
 * by JetStream itself, all in the same run on the same nats-server.
 *
 * 1. raw: the `@nats-io/jetstream` client publishing straight to a stream of its own on the node's
 *    nats-server (file storage, acknowledged, RAW_IN_FLIGHT at once, the ~200-byte message Touchline
 *    would store for the same event). Measured before the first round and after every round: a
 *    round's baseline is the mean of the two around it, so a drift of the machine shows as their gap.
 * 2. single: SINGLE_CONCURRENCY HTTP publishers, `POST /matches/{m}/events` over PUBLISH_MATCHES
 *    matches, each publisher sending its next event once the previous one was acknowledged.
 * 3. batched: `POST /events` with BATCH_ITEMS items over the same matches, BATCHES_IN_FLIGHT at once.
 *
 * Single and batched run in `publishRounds` rounds; the round with the median ratio to its own raw
 * baseline is reported (this machine is shared: one run's raw baseline was half another's).
 *
 * Every figure comes with the CPU the node, the nats-server and the publisher itself spent per event
 * (utime+stime from /proc, or process.cpuUsage for the publisher): the publisher shares the load
 * generator's core, and a publisher near 100% busy means it, not the server, set the pace. The
 * messages the nats-server took in and sent out per event (/varz) say how much NATS work one event is.
 */
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import type { TouchlinePeer } from "../peers/touchline-peer.ts";
import { KeepAliveConnection } from "../loadgen/keepalive-client.ts";
import type { PublishFigures, PublishRound, ThroughputFigures } from "../results.ts";
import type { ScenarioContext } from "./context.ts";
import { Timings, cpuMeter, machineCpuMeter, natsMessages, ownCpuMeter } from "./timings.ts";

export const RAW_IN_FLIGHT = 64;
export const SINGLE_CONCURRENCY = 64;
export const PUBLISH_MATCHES = 100;
export const BATCH_ITEMS = 250;
export const BATCHES_IN_FLIGHT = 4;
/** Bytes of the message JetStream stores per event, raw and through Touchline alike. */
export const PAYLOAD_BYTES = 200;
const RAW_STREAM = "bench_raw";
const MATCH_PREFIX = "pub";
const HOST = "127.0.0.1";
const REQUEST_TIMEOUT_MS = 10_000;
const HTTP_CREATED = 201;
const PERCENT = 100;
const MICROS_PER_SECOND = 1_000_000;
/** Before each measured phase, the same load runs this long unmeasured (connections, JIT, first actors). */
const WARMUP_FRACTION = 0.2;
/** More failed requests than this share fails the scenario: the figure would be the errors' speed. */
const MAX_ERROR_SHARE = 0.01;

/** The event's application data, padded so the stored message is about PAYLOAD_BYTES. */
const PAD = "x".repeat(Math.max(0, PAYLOAD_BYTES - `{"type":"tick","data":{"seq":1000000,"pad":""},"ts":${Date.now()}}`.length));
const dataOf = (seq: number): string => `{"seq":${seq},"pad":"${PAD}"}`;
const matchOf = (n: number): string => `${MATCH_PREFIX}${n % PUBLISH_MATCHES}`;

export async function runPublish(context: ScenarioContext, peer: TouchlinePeer): Promise<PublishFigures> {
  const { publishSeconds: seconds, publishRounds } = context.config;
  const rawRun = (label: string): Promise<ThroughputFigures> => measure(context, peer, label, seconds, (deadline) => rawLoad(peer, deadline));
  // Once before the rounds, unmeasured: round 1 was the slowest in every run (0.35-0.40× raw against 0.44-0.57× for
  // rounds 2 and 3 on 2026-12-05) while the node compiled its publish paths and took on its first matches; each
  // phase's own warm-up (a fifth of it) was not enough for that. Raw JetStream, compiled ahead, needs none.
  const warmup = context.config.publishWarmupSeconds * 1000;
  await singleLoad(peer, performance.now() + warmup);
  await batchedLoad(peer, performance.now() + warmup);
  const raw = [await rawRun("raw JetStream")];
  const rounds: PublishRound[] = [];
  for (let r = 1; r <= publishRounds; r++) {
    const single = await measure(context, peer, `Touchline single (round ${r})`, seconds, (deadline) => singleLoad(peer, deadline));
    const batched = await measure(context, peer, `Touchline batched (round ${r})`, seconds, (deadline) => batchedLoad(peer, deadline));
    raw.push(await rawRun("raw JetStream"));
    const rawPerSecond = (raw[r - 1]!.eventsPerSecond + raw[r]!.eventsPerSecond) / 2;
    const round = { rawPerSecond, single, batched, singleToRaw: single.eventsPerSecond / rawPerSecond, batchedToRaw: batched.eventsPerSecond / rawPerSecond };
    rounds.push(round);
    context.log(
      `  publish round ${r}: single ${round.singleToRaw.toFixed(2)}× raw, batched ${round.batchedToRaw.toFixed(2)}× raw (raw ${Math.round(rawPerSecond)}/s)`,
    );
  }
  const singleRound = medianBy(rounds, (r) => r.singleToRaw);
  const batchedRound = medianBy(rounds, (r) => r.batchedToRaw);
  if (rounds.length > 1) {
    context.log(
      `  publish: median of ${rounds.length} rounds: single ${singleRound.singleToRaw.toFixed(2)}× raw, batched ${batchedRound.batchedToRaw.toFixed(2)}× raw`,
    );
  }
  return {
    payloadBytes: PAYLOAD_BYTES,
    matches: PUBLISH_MATCHES,
    rawInFlight: RAW_IN_FLIGHT,
    singleConcurrency: SINGLE_CONCURRENCY,
    batchItems: BATCH_ITEMS,
    batchesInFlight: BATCHES_IN_FLIGHT,
    raw,
    rawPerSecond: raw.reduce((sum, t) => sum + t.eventsPerSecond, 0) / raw.length,
    rounds,
    singleToRaw: singleRound.singleToRaw,
    batchedToRaw: batchedRound.batchedToRaw,
    single: singleRound.single,
    batched: batchedRound.batched,
  };
}

/** The element with the median key (the lower one of an even count), as the steady scenario picks its round. */
function medianBy<T>(items: T[], key: (item: T) => number): T {
  return [...items].sort((a, b) => key(a) - key(b))[Math.floor((items.length - 1) / 2)]!;
}

/** What one load run reports: events acknowledged, requests made (a batch is one), failures. */
export interface LoadResult {
  events: number;
  requests: number;
  errors: number;
  firstError?: string;
  ack: Timings;
}

type Load = (deadline: number) => Promise<LoadResult>;

/** Runs the load unmeasured for a warm-up, then measured for `seconds`, with every process's CPU. */
async function measure(context: ScenarioContext, peer: TouchlinePeer, label: string, seconds: number, load: Load): Promise<ThroughputFigures> {
  await load(performance.now() + seconds * WARMUP_FRACTION * 1000);
  const node = cpuMeter(() => peer.nodePids());
  const nats = cpuMeter(() => peer.natsPids());
  const own = ownCpuMeter();
  const machine = machineCpuMeter();
  const messagesBefore = await natsMessages(peer.natsMonitorUrl);
  const started = performance.now();
  const result = await load(started + seconds * 1000);
  const elapsed = (performance.now() - started) / 1000;
  const nodeUs = node();
  const natsUs = nats();
  const ownUs = own();
  const otherUs = Math.max(0, machine() - nodeUs - natsUs - ownUs);
  const messagesAfter = await natsMessages(peer.natsMonitorUrl);
  if (result.errors > result.requests * MAX_ERROR_SHARE) {
    throw new Error(`${label}: ${result.errors} of ${result.requests} requests failed (first: ${result.firstError})`);
  }
  const perEvent = (us: number): number => (result.events === 0 ? Number.NaN : us / result.events);
  const figures: ThroughputFigures = {
    events: result.events,
    requests: result.requests,
    errors: result.errors,
    seconds: elapsed,
    eventsPerSecond: result.events / elapsed,
    ack: result.ack.summary(),
    nodeCpuUsPerEvent: label.startsWith("raw") ? null : perEvent(nodeUs),
    natsCpuUsPerEvent: perEvent(natsUs),
    publisherCpuUsPerEvent: perEvent(ownUs),
    publisherBusyPercent: (ownUs / (elapsed * MICROS_PER_SECOND)) * PERCENT,
    otherCpuPercent: (otherUs / (elapsed * MICROS_PER_SECOND)) * PERCENT,
    natsMessagesInPerEvent: perEvent(messagesAfter.in - messagesBefore.in),
    natsMessagesOutPerEvent: perEvent(messagesAfter.out - messagesBefore.out),
  };
  context.log(
    `  ${label}: ${Math.round(figures.eventsPerSecond)} events/s (${figures.requests} requests, ${figures.errors} errors), ` +
      `ack p50 ${figures.ack.p50Ms.toFixed(2)} p99 ${figures.ack.p99Ms.toFixed(2)} ms; CPU µs/event: ` +
      `node ${figures.nodeCpuUsPerEvent?.toFixed(1) ?? "-"}, nats-server ${figures.natsCpuUsPerEvent.toFixed(1)} ` +
      `(${figures.natsMessagesInPerEvent.toFixed(1)} messages in, ${figures.natsMessagesOutPerEvent.toFixed(1)} out per event), ` +
      `publisher ${figures.publisherCpuUsPerEvent.toFixed(1)} (busy ${figures.publisherBusyPercent.toFixed(0)}%); other processes ${figures.otherCpuPercent.toFixed(0)}% of a core`,
  );
  return figures;
}

/** RAW_IN_FLIGHT publishes at once on one connection, each followed by the next once acknowledged. */
export async function rawLoad(peer: TouchlinePeer, deadline: number): Promise<LoadResult> {
  const nc = await connect({ servers: peer.natsUrl, name: "bench-raw-publisher" });
  const result: LoadResult = { events: 0, requests: 0, errors: 0, ack: new Timings() };
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: RAW_STREAM, subjects: [`${RAW_STREAM}.>`], storage: StorageType.File });
    const js = jetstream(nc);
    let seq = 0;
    const worker = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const n = seq++;
        const started = performance.now();
        result.requests++;
        try {
          await js.publish(`${RAW_STREAM}.${matchOf(n)}`, `{"type":"tick","data":${dataOf(n)},"ts":${Date.now()}}`);
          result.events++;
          result.ack.record(performance.now() - started);
        } catch (error) {
          result.errors++;
          result.firstError ??= String(error);
        }
      }
    };
    await Promise.all(Array.from({ length: RAW_IN_FLIGHT }, worker));
    // Gone before Touchline is measured: the raw messages must not weigh on its store.
    await jsm.streams.delete(RAW_STREAM);
  } finally {
    await nc.close();
  }
  return result;
}

/** SINGLE_CONCURRENCY keep-alive connections, each publishing one event at a time. */
export function singleLoad(peer: TouchlinePeer, deadline: number): Promise<LoadResult> {
  return keepAliveLoad(peer, deadline, SINGLE_CONCURRENCY, (next) => {
    const n = next();
    return { path: `/matches/${matchOf(n)}/events`, body: `{"type":"tick","data":${dataOf(n)}}`, events: 1 };
  });
}

/** BATCHES_IN_FLIGHT keep-alive connections, each sending a batch of BATCH_ITEMS once the previous was answered. */
export function batchedLoad(peer: TouchlinePeer, deadline: number): Promise<LoadResult> {
  return keepAliveLoad(peer, deadline, BATCHES_IN_FLIGHT, (next) => {
    const items: string[] = [];
    for (let i = 0; i < BATCH_ITEMS; i++) {
      const n = next();
      items.push(`{"match":"${matchOf(n)}","type":"tick","data":${dataOf(n)}}`);
    }
    return { path: "/events", body: `[${items.join(",")}]`, events: BATCH_ITEMS };
  });
}

/**
 * `concurrency` keep-alive connections, each POSTing the request `make` builds (from event numbers
 * drawn from one shared counter) once the previous one was answered 201, until `deadline`.
 */
async function keepAliveLoad(
  peer: TouchlinePeer,
  deadline: number,
  concurrency: number,
  make: (next: () => number) => { path: string; body: string; events: number },
): Promise<LoadResult> {
  const result: LoadResult = { events: 0, requests: 0, errors: 0, ack: new Timings() };
  const connections = await Promise.all(Array.from({ length: concurrency }, () => KeepAliveConnection.open(HOST, peer.nodePort)));
  let seq = 0;
  const next = (): number => seq++;
  const worker = async (connection: KeepAliveConnection): Promise<void> => {
    while (performance.now() < deadline) {
      const request = make(next);
      const started = performance.now();
      result.requests++;
      try {
        const answer = await connection.request("POST", request.path, request.body, REQUEST_TIMEOUT_MS);
        if (answer.status !== HTTP_CREATED) throw new Error(`answered ${answer.status}: ${answer.body.slice(0, 200)}`);
        result.events += request.events;
        result.ack.record(performance.now() - started);
      } catch (error) {
        result.errors++;
        result.firstError ??= String(error);
      }
    }
  };
  try {
    await Promise.all(connections.map(worker));
  } finally {
    for (const c of connections) c.close();
  }
  return result;
}
