/**
 * Many matches (issue 12): one freshly started Touchline node is given one event for each of
 * MANY_MATCHES matches (in `POST /events` batches), then streams on some of them, then more events
 * to every match. What each owned match costs must not grow with the matches: JetStream consumers
 * on the server, the node's memory per idle match, and its responsiveness while it happens.
 *
 * Read all through the scenario, from beside the node (the watch runs in the orchestrator, on the
 * generator core): `/readyz` answer times, the node's own event-loop lag gauge from `/metrics`, its
 * resident memory from /proc, and the server's consumer count from its monitoring port (`/jsz`),
 * which costs it no JetStream API call.
 *
 * Memory per idle match: the node's RSS growth from its fresh start until every match is owned and
 * idle and the node has settled, divided by the matches. Idle means the node has nothing left to do for
 * them: every match's index entry is stored in the bucket (a node writes at most 2,000 entries a flush,
 * once a second, so 20,000 new matches take about ten seconds). Settled means the runtime has given back
 * what creating them left behind: RSS stays at the burst's level until Bun's collector runs and its
 * allocator returns the pages, in one step 10-12 s after the last event whatever the number of matches
 * (`bun bench/rssAfterBurst.ts`: 5.4 → 1.5 KiB per match at 10.5 s for 20,000, 5.8 → 2.2 at 12 s for
 * 10,000, flat after). So RSS is read every 250 ms for IDLE_WINDOW_MS once the entries are stored, and
 * the median of the window's last SETTLED_SHARE is the idle reading; the whole window's range and the
 * reading 1.5 s after every match is owned (the burst's level) are logged beside it. A median of the
 * whole 5 s window, as before, read 1.5-5.0 KiB for the same code, by where the step fell in it.
 */
import { postInBatches } from "../batchPosts.ts";
import { KeepAliveConnection } from "../loadgen/keepalive-client.ts";
import type { TouchlinePeer } from "../peers/touchline-peer.ts";
import type { ManyMatchesFigures, MatchesPhase } from "../results.ts";
import { encodeTickPublish } from "../tick.ts";
import { STREAMS_PER_MATCH } from "../bench-config.ts";
import { DRAIN_TIMEOUT_MS, type ScenarioContext, deliveryFigures, describeDelivery, describeFirstEvent, firstEventFigures, openStreams } from "./context.ts";
import { cpuMicros, residentBytes } from "../proc-stats.ts";
import { Timings, cpuMeter, machineCpuMeter, natsMessages, ownCpuMeter, pollUntil } from "./timings.ts";

const MATCH_PREFIX = "mm";
const HOST = "127.0.0.1";
const BATCHES_IN_FLIGHT = 4;
const HTTP_OK = 200;
/** A batch of 500 took 1.7 s when every match cost a consumer (292 publishes/s); far past that, the node is stuck. */
const BATCH_TIMEOUT_MS = 30_000;
/** One round of events to every match; at the old design's 292 publishes/s, 20,000 took 68 s. */
const ROUND_TIMEOUT_MS = 180_000;
/** Every match must have its owner actor within this after its event was stored. */
const OWNED_TIMEOUT_MS = 60_000;
/** At least this long between the last event and the first memory reading (index writes are flushed once a second). */
const IDLE_SETTLE_MS = 1_500;
/** Every match's index entry is stored within this after every match is owned (2,000 entries a second at most). */
const INDEX_STORED_TIMEOUT_MS = 60_000;
/** RSS is sampled this long once the node is idle: long enough that the runtime's return of the burst's pages falls in it. */
const IDLE_WINDOW_MS = 15_000;
/** The window's last third (5 s) is the settled node; its median is the idle reading. */
const SETTLED_SHARE = 1 / 3;
/** Streams stay under this share of the node's cap, below the 95% at which /readyz says saturated. */
const CAP_SHARE = 0.85;
const READYZ_EVERY_MS = 100;
const READYZ_TIMEOUT_MS = 5_000;
/**
 * The node's lag gauge holds the worst of its 100 ms probes over the last second (the bench peer sets
 * EVENT_LOOP_LAG_WINDOW_MS): scraping every 250 ms sees every stall, each in the step it happened in or the next.
 */
const METRICS_EVERY_MS = 250;
const RSS_EVERY_MS = 250;
const CONSUMERS_EVERY_MS = 1_000;
const PROBE_TIMEOUT_MS = 5_000;
const MS_PER_SECOND = 1000;
/** The match index's bucket is `<namespace>_index` (src/bus/subjects.ts). */
const INDEX_BUCKET_SUFFIX = "_index";
const LAG_GAUGE = /^touchline_event_loop_lag_seconds (\S+)$/m;
const OWNED_GAUGE = /^touchline_owned_matches (\S+)$/m;

/** Expects the peer started afresh and warmed up, with no streams open. */
export async function runManyMatches(context: ScenarioContext, peer: TouchlinePeer): Promise<ManyMatchesFigures> {
  const { config, book, pool } = context;
  const matches = Array.from({ length: config.manyMatches }, (_, i) => `${MATCH_PREFIX}${i}`);
  await Bun.sleep(config.settleMs);
  const nodeRssBefore = residentBytes(peer.nodePids());
  const natsRssBefore = residentBytes(peer.natsPids());
  const machine = machineCpuMeter();
  const own = ownCpuMeter();
  const server = cpuMeter(() => peer.pids());
  const scenarioStarted = performance.now();
  const watch = new NodeWatch(peer);
  watch.start();
  try {
    const nodeCpu = cpuMeter(() => peer.nodePids());
    const natsCpu = cpuMeter(() => peer.natsPids());
    const messagesBefore = await natsMessages(peer.natsMonitorUrl);
    watch.phase = "storing";
    const created = await publishRounds(context, peer, matches, 1);
    watch.phase = "owners starting";
    // Every match gets its owner actor (lease, index entry) once its event comes off the stream tail:
    // that start-up is part of what creating a match costs, so CPU and messages are read after it.
    let ownedMatches = 0;
    const allOwned = await pollUntil(
      async () => {
        ownedMatches = (await scrape(peer)).owned;
        return ownedMatches >= matches.length;
      },
      OWNED_TIMEOUT_MS,
      RSS_EVERY_MS,
    );
    if (!allOwned) throw new Error(`the node owns ${ownedMatches} of ${matches.length} matches ${OWNED_TIMEOUT_MS / 1000} s after their events`);
    const messagesAfter = await natsMessages(peer.natsMonitorUrl);
    const create = {
      events: created.events,
      seconds: created.seconds,
      eventsPerSecond: created.events / created.seconds,
      nodeCpuUsPerEvent: nodeCpu() / created.events,
      natsCpuUsPerEvent: natsCpu() / created.events,
      natsMessagesPerEvent: (messagesAfter.in - messagesBefore.in + messagesAfter.out - messagesBefore.out) / created.events,
    };
    context.log(
      `  matches: one event to each of ${matches.length} matches stored in ${create.seconds.toFixed(1)} s (${Math.round(create.eventsPerSecond)}/s); ` +
        `with every owner started, CPU µs/event node ${create.nodeCpuUsPerEvent.toFixed(1)}, nats-server ${create.natsCpuUsPerEvent.toFixed(1)}, ` +
        `${create.natsMessagesPerEvent.toFixed(1)} NATS messages per event`,
    );
    watch.phase = "idle";
    await Bun.sleep(Math.max(config.settleMs, IDLE_SETTLE_MS));
    const nodeRssOwned = residentBytes(peer.nodePids());
    let indexed = 0;
    const allIndexed = await pollUntil(
      async () => {
        indexed = await indexEntriesStored(peer);
        return indexed >= matches.length;
      },
      INDEX_STORED_TIMEOUT_MS,
      RSS_EVERY_MS,
    );
    if (!allIndexed) throw new Error(`${indexed} of ${matches.length} index entries stored ${INDEX_STORED_TIMEOUT_MS / 1000} s after every match was owned`);
    const idleSamples: number[] = [];
    for (let waited = 0; waited < IDLE_WINDOW_MS; waited += RSS_EVERY_MS) {
      await Bun.sleep(RSS_EVERY_MS);
      idleSamples.push(residentBytes(peer.nodePids()));
    }
    const settled = idleSamples.slice(-Math.ceil(idleSamples.length * SETTLED_SHARE)).sort((a, b) => a - b);
    const nodeRssIdle = settled[Math.floor(settled.length / 2)]!;
    idleSamples.sort((a, b) => a - b);
    const natsRssIdle = residentBytes(peer.natsPids());
    const consumersAfterCreate = await countConsumers(peer);
    ownedMatches = (await scrape(peer)).owned;
    const bytesPerIdleMatch = (nodeRssIdle - nodeRssBefore) / matches.length;
    const perMatchKiB = (rss: number): string => ((rss - nodeRssBefore) / matches.length / 1024).toFixed(2);
    context.log(
      `  matches: ${ownedMatches} owned, ${consumersAfterCreate} JetStream consumers; node RSS ${mib(nodeRssBefore)} → ${mib(nodeRssIdle)} MiB ` +
        `(${(bytesPerIdleMatch / 1024).toFixed(2)} KiB per idle match, median of the last ${settled.length} of ${idleSamples.length} readings over ${IDLE_WINDOW_MS / 1000} s, ` +
        `all ${perMatchKiB(idleSamples[0]!)}-${perMatchKiB(idleSamples.at(-1)!)}; ${perMatchKiB(nodeRssOwned)} KiB 1.5 s after every match was owned, ` +
        `before their index entries were stored), nats-server ${mib(natsRssBefore)} → ${mib(natsRssIdle)} MiB`,
    );

    const cap = peer.streamCap;
    const streamedMatches = Math.min(config.manyMatchesStreamed, matches.length, Math.floor((cap * CAP_SHARE) / STREAMS_PER_MATCH));
    const streamed = matches.slice(0, streamedMatches);
    watch.phase = "streams opening";
    const opened = await openStreams(
      context,
      streamed.map((channel) => ({ channel, count: STREAMS_PER_MATCH })),
    );
    const openFirstEvent = firstEventFigures(opened, pool.pids.length);
    context.log(`  matches: ${streamedMatches} matches × ${STREAMS_PER_MATCH} streams; ${describeFirstEvent(openFirstEvent)}`);
    await pool.reset();
    const serverCpu = cpuMeter(() => peer.pids());
    const nodeDeliverCpu = cpuMeter(() => peer.nodePids());
    const rounds = config.manyMatchesRounds;
    watch.phase = "delivering";
    const sent = await publishRounds(context, peer, matches, rounds);
    const stats = await pool.awaitFinals(book.finals(streamed), DRAIN_TIMEOUT_MS);
    const serverUs = serverCpu();
    const nodeUs = nodeDeliverCpu();
    const delivery = deliveryFigures(stats, rounds * streamedMatches * STREAMS_PER_MATCH, serverUs);
    const watched = await watch.stop();
    // Generators were started during this scenario (the peer was restarted): all their CPU is in it.
    const otherUs = Math.max(0, machine() - server() - own() - cpuMicros(pool.pids));
    const otherCpuPercent = (otherUs / ((performance.now() - scenarioStarted) * 1000)) * 100;
    const figures: ManyMatchesFigures = {
      matches: matches.length,
      batchItems: config.manyMatchesBatchItems,
      create,
      ownedMatches,
      consumersAfterCreate,
      consumersMax: Math.max(consumersAfterCreate, watched.consumersMax),
      nodeRssBeforeBytes: nodeRssBefore,
      nodeRssIdleBytes: nodeRssIdle,
      nodeRssPeakBytes: Math.max(nodeRssIdle, watched.nodeRssPeak),
      bytesPerIdleMatch,
      bytesPerMatchAfterBurst: (nodeRssOwned - nodeRssBefore) / matches.length,
      natsRssBeforeBytes: natsRssBefore,
      natsRssIdleBytes: natsRssIdle,
      readyz: watched.readyz.summary(),
      readyzFailures: watched.readyzFailures,
      otherCpuPercent,
      loopLagMaxMs: watched.lagMaxMs,
      loopLagSamples: watched.lagSamples,
      phases: watched.phases,
      streamedMatches,
      streamsPerMatch: STREAMS_PER_MATCH,
      openFirstEvent,
      rounds,
      events: sent.events,
      delivery,
      serverCpuUsPerEvent: serverUs / sent.events,
      nodeCpuUsPerDelivery: stats.deliveries === 0 ? Number.NaN : nodeUs / stats.deliveries,
    };
    context.log(
      `  matches: ${rounds} more event(s) to every match in ${sent.seconds.toFixed(1)} s; ${describeDelivery(delivery)}; ` +
        `node ${figures.nodeCpuUsPerDelivery.toFixed(2)} µs/del, server ${figures.serverCpuUsPerEvent.toFixed(1)} µs/event`,
    );
    context.log(
      `  matches: /readyz p99 ${figures.readyz.p99Ms.toFixed(1)} max ${figures.readyz.maxMs.toFixed(1)} ms (${figures.readyz.count} probes, ${figures.readyzFailures} failed); ` +
        `event-loop lag max ${figures.loopLagMaxMs.toFixed(1)} ms; consumers max ${figures.consumersMax}; node RSS peak ${mib(figures.nodeRssPeakBytes)} MiB; ` +
        `other processes ${otherCpuPercent.toFixed(0)}% of a core`,
    );
    return figures;
  } finally {
    await watch.stop();
  }
}

/**
 * `rounds` events to every match, in batches of `manyMatchesBatchItems`, BATCHES_IN_FLIGHT at once;
 * a round ends before the next starts, so each match's events are stored in order. Every item carries
 * the match's next sequence number, recorded once the batch is acknowledged.
 */
async function publishRounds(context: ScenarioContext, peer: TouchlinePeer, matches: string[], rounds: number): Promise<{ events: number; seconds: number }> {
  const { book, config } = context;
  const connections = await Promise.all(Array.from({ length: BATCHES_IN_FLIGHT }, () => KeepAliveConnection.open(HOST, peer.nodePort)));
  const started = performance.now();
  let events = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      await postInBatches(connections, matches, {
        batchItems: config.manyMatchesBatchItems,
        timeoutMs: BATCH_TIMEOUT_MS,
        deadline: { at: performance.now() + ROUND_TIMEOUT_MS, what: `a round of ${matches.length} events (${ROUND_TIMEOUT_MS / 1000} s allowed)` },
        batch: (chunk) => {
          const seqs = chunk.map((match) => book.lastOf(match) + 1);
          return {
            body: `[${chunk.map((match, i) => encodeTickPublish(seqs[i] as number, match)).join(",")}]`,
            stored: () => {
              for (const [i, match] of chunk.entries()) book.acknowledged(match, seqs[i] as number);
              events += chunk.length;
            },
          };
        },
      });
    }
  } finally {
    for (const c of connections) c.close();
  }
  return { events, seconds: (performance.now() - started) / MS_PER_SECOND };
}

async function scrape(peer: TouchlinePeer): Promise<{ lagMs: number; owned: number }> {
  const response = await fetch(`http://${HOST}:${peer.nodePort}/metrics`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const text = await response.text();
  return {
    lagMs: Number(LAG_GAUGE.exec(text)?.[1] ?? Number.NaN) * MS_PER_SECOND,
    owned: Number(OWNED_GAUGE.exec(text)?.[1] ?? 0),
  };
}

/** JetStream consumers on the whole server, from its monitoring port. */
async function countConsumers(peer: TouchlinePeer): Promise<number> {
  const response = await fetch(`${peer.natsMonitorUrl}/jsz`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const jsz = (await response.json()) as { consumers?: number };
  if (typeof jsz.consumers !== "number") throw new Error("nats-server /jsz has no consumer count");
  return jsz.consumers;
}

/** Entries in the match index's bucket, from the server's monitoring port (no JetStream API call). */
async function indexEntriesStored(peer: TouchlinePeer): Promise<number> {
  const response = await fetch(`${peer.natsMonitorUrl}/jsz?streams=true`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const jsz = (await response.json()) as { account_details?: { stream_detail?: { name: string; state?: { num_subjects?: number; messages?: number } }[] }[] };
  let entries = 0;
  for (const account of jsz.account_details ?? []) {
    for (const stream of account.stream_detail ?? []) {
      if (stream.name.startsWith("KV_") && stream.name.endsWith(INDEX_BUCKET_SUFFIX)) entries += stream.state?.num_subjects ?? stream.state?.messages ?? 0;
    }
  }
  return entries;
}

/** Samples the node and its nats-server on timers until stopped; every loop ends with stop(). */
class NodeWatch {
  readonly readyz = new Timings();
  readyzFailures = 0;
  lagMaxMs = 0;
  lagSamples = 0;
  /** The worst readings per step of the scenario, in order, to tell which step stalls the node. */
  readonly phases: MatchesPhase[] = [{ name: "fresh", readyzMaxMs: 0, loopLagMaxMs: 0, probes: 0 }];

  /** The step the scenario is at now. */
  set phase(name: string) {
    this.phases.push({ name, readyzMaxMs: 0, loopLagMaxMs: 0, probes: 0 });
  }
  nodeRssPeak = 0;
  consumersMax = 0;
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly peer: TouchlinePeer) {}

  start(): void {
    this.running = true;
    this.loops = [
      this.every(READYZ_EVERY_MS, () => this.probeReadyz()),
      this.every(METRICS_EVERY_MS, async () => {
        const { lagMs } = await scrape(this.peer);
        if (Number.isFinite(lagMs)) this.noteLag(lagMs);
      }),
      this.every(RSS_EVERY_MS, async () => {
        this.nodeRssPeak = Math.max(this.nodeRssPeak, residentBytes(this.peer.nodePids()));
      }),
      this.every(CONSUMERS_EVERY_MS, async () => {
        this.consumersMax = Math.max(this.consumersMax, await countConsumers(this.peer));
      }),
    ];
  }

  async stop(): Promise<this> {
    this.running = false;
    await Promise.all(this.loops);
    return this;
  }

  private async probeReadyz(): Promise<void> {
    const started = performance.now();
    try {
      const response = await fetch(`http://${HOST}:${this.peer.nodePort}/readyz`, { signal: AbortSignal.timeout(READYZ_TIMEOUT_MS) });
      await response.arrayBuffer();
      this.noteReadyz(performance.now() - started);
      if (response.status !== HTTP_OK) this.readyzFailures++;
    } catch {
      this.noteReadyz(performance.now() - started);
      this.readyzFailures++;
    }
  }

  private noteReadyz(ms: number): void {
    this.readyz.record(ms);
    const phase = this.phases[this.phases.length - 1]!;
    phase.readyzMaxMs = Math.max(phase.readyzMaxMs, ms);
    phase.probes++;
  }

  private noteLag(ms: number): void {
    this.lagSamples++;
    this.lagMaxMs = Math.max(this.lagMaxMs, ms);
    const phase = this.phases[this.phases.length - 1]!;
    phase.loopLagMaxMs = Math.max(phase.loopLagMaxMs, ms);
  }

  private async every(intervalMs: number, sample: () => Promise<void>): Promise<void> {
    while (this.running) {
      await sample().catch(() => {});
      await Bun.sleep(intervalMs);
    }
  }
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
