/**
 * The results page's sections for issue 12 (publishing at JetStream speed, 20,000 matches on a node)
 * and time to first event: the figures, then the issue's goals with what this run measured.
 */
import type {
  BenchResult,
  FirstEventFigures,
  ManyMatchesFigures,
  MatchesPhase,
  PeerResult,
  PublishFigures,
  PublishRound,
  ThroughputFigures,
} from "../results.ts";
import { fixed, kib, whole } from "./format.ts";

const TOUCHLINE_ONE_NODE = "touchline";
const REFERENCE_NCHAN = "nchan";
/** Shown where a figure was not measured in this run (never "n/a | n/a": the smoke test looks for that). */
const NOT_RUN = "not run";

/** The issue's goals (one node, same run, this machine). */
export const GOALS = {
  singleToRaw: 0.5,
  batchedToRaw: 0.8,
  ackP99Ms: 50,
  consumers: 100,
  bytesPerIdleMatch: 2048,
  readyzMaxMs: 50,
  loopLagMs: 50,
  channelsCpuToNchan: 2,
} as const;

export function renderFirstEvent(result: BenchResult): string[] {
  const measured = result.peers.filter((p) => p.idle?.firstEvent !== undefined || p.hold?.firstEvent !== undefined);
  if (measured.length === 0) return [];
  const lines = ["## Time to first event", ""];
  lines.push(
    "From a stream's first connection attempt to the first byte of its body (Touchline: `retry:` and the snapshot, sent together; nchan and bare Bun: " +
      "an opening comment), for every stream opened; the generator keeps up to 256 connections opening at once per process, so this is the open latency under that load.",
  );
  lines.push("");
  lines.push("| peer | fan-out open: streams | p50 / p95 / p99 / max ms | hold: streams | p50 / p95 / p99 / max ms |");
  lines.push("| --- | ---: | ---: | ---: | ---: |");
  for (const peer of measured) {
    lines.push(
      `| ${peer.title} | ${streamsOf(peer.idle?.firstEvent)} | ${percentiles(peer.idle?.firstEvent)} | ${streamsOf(peer.hold?.firstEvent)} | ${percentiles(peer.hold?.firstEvent)} |`,
    );
  }
  lines.push("");
  return lines;
}

export function renderIssue12(result: BenchResult): string[] {
  const touchline = result.peers.find((p) => p.name === TOUCHLINE_ONE_NODE);
  if (touchline?.publish === undefined && touchline?.matches === undefined) return [];
  const lines: string[] = [];
  if (touchline.publish !== undefined) lines.push(...publishTable(touchline.publish));
  if (touchline.matches !== undefined) lines.push(...matchesTable(touchline.matches));
  lines.push(...goalsTable(result, touchline));
  return lines;
}

function publishTable(p: PublishFigures): string[] {
  const lines = ["## Publishing: Touchline against raw JetStream, one node, same nats-server, same run", ""];
  lines.push(
    `Stored message ~${p.payloadBytes} bytes, file storage, acknowledged, over ${p.matches} matches (subjects). Raw: one \`@nats-io/jetstream\` client, ${p.rawInFlight} in flight, ` +
      `measured before the first round and after each (a round's baseline: the two around it). Single: ${p.singleConcurrency} keep-alive HTTP publishers, \`POST /matches/{m}/events\`. ` +
      `Batched: \`POST /events\` of ${p.batchItems} items, ${p.batchesInFlight} in flight. Ack latency is per request (a whole batch for batched). ` +
      `Rows in the order run; ÷ raw is against the round's own baseline (raw rows: against the mean of all raw runs, ${whole(p.rawPerSecond)}/s).`,
  );
  lines.push("");
  lines.push(
    "| load | events/s | ÷ raw | ack p50 / p99 / max ms | node µs/event | nats-server µs/event | NATS messages in / out per event | publisher µs/event (busy) | errors | other processes, % of a core |",
  );
  lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  const row = (label: string, t: ThroughputFigures, baseline: number): void => {
    lines.push(
      `| ${label} | ${whole(t.eventsPerSecond)} | ${fixed(t.eventsPerSecond / baseline, 2)}× | ${fixed(t.ack.p50Ms, 1)} / ${fixed(t.ack.p99Ms, 1)} / ${fixed(t.ack.maxMs, 1)} | ` +
        `${t.nodeCpuUsPerEvent === null ? "-" : fixed(t.nodeCpuUsPerEvent, 1)} | ${fixed(t.natsCpuUsPerEvent, 1)} | ${fixed(t.natsMessagesInPerEvent, 1)} / ${fixed(t.natsMessagesOutPerEvent, 1)} | ${fixed(t.publisherCpuUsPerEvent, 1)} (${whole(t.publisherBusyPercent)}%) | ${whole(t.errors)} | ${whole(t.otherCpuPercent)} |`,
    );
  };
  const rounds = p.rounds.length;
  p.raw.forEach((raw, i) => {
    row("raw JetStream", raw, p.rawPerSecond);
    const round = p.rounds[i];
    if (round === undefined) return;
    const of = rounds > 1 ? ` (round ${i + 1})` : "";
    row(`Touchline single${of}`, round.single, round.rawPerSecond);
    row(`Touchline batched${of}`, round.batched, round.rawPerSecond);
  });
  lines.push("");
  return lines;
}

function matchesTable(m: ManyMatchesFigures): string[] {
  const lines = [`## ${whole(m.matches)} matches on one node (fresh start)`, ""];
  lines.push(
    `One event to each match in \`POST /events\` batches of ${m.batchItems} (4 in flight), then ${m.streamsPerMatch} streams on each of ${whole(m.streamedMatches)} of them, ` +
      `then ${m.rounds} more event(s) to every match. /readyz, the event-loop lag gauge, RSS and the consumer count are sampled all through.`,
  );
  lines.push("");
  lines.push("| figure | value |");
  lines.push("| --- | ---: |");
  lines.push(`| creating: events/s (one per match) | ${whole(m.create.eventsPerSecond)} (${fixed(m.create.seconds, 1)} s) |`);
  lines.push(
    `| creating: CPU µs/event until every owner started, node / nats-server | ${fixed(m.create.nodeCpuUsPerEvent, 1)} / ${fixed(m.create.natsCpuUsPerEvent, 1)} |`,
  );
  lines.push(`| creating: NATS messages (in + out) per event, owners' start-up included | ${fixed(m.create.natsMessagesPerEvent, 1)} |`);
  lines.push(`| matches owned after creation | ${whole(m.ownedMatches)} |`);
  lines.push(`| JetStream consumers on the server: after creation / most seen | ${whole(m.consumersAfterCreate)} / ${whole(m.consumersMax)} |`);
  lines.push(`| node RSS: fresh / all idle / peak, MiB | ${mib(m.nodeRssBeforeBytes)} / ${mib(m.nodeRssIdleBytes)} / ${mib(m.nodeRssPeakBytes)} |`);
  lines.push(
    m.bytesPerMatchAfterBurst === undefined
      ? `| node RSS per idle match, KiB | ${kib(m.bytesPerIdleMatch)} |`
      : `| node RSS per match, KiB: idle and settled / 1.5 s after creation | ${kib(m.bytesPerIdleMatch)} / ${kib(m.bytesPerMatchAfterBurst)} |`,
  );
  lines.push(`| nats-server RSS: fresh / all idle, MiB | ${mib(m.natsRssBeforeBytes)} / ${mib(m.natsRssIdleBytes)} |`);
  lines.push(
    `| /readyz p50 / p99 / max ms (${whole(m.readyz.count)} probes, ${whole(m.readyzFailures)} failed) | ${fixed(m.readyz.p50Ms, 1)} / ${fixed(m.readyz.p99Ms, 1)} / ${fixed(m.readyz.maxMs, 1)} |`,
  );
  lines.push(`| event-loop lag max ms (${whole(m.loopLagSamples)} scrapes) | ${fixed(m.loopLagMaxMs, 1)} |`);
  if (m.phases !== undefined && m.phases.length > 0) {
    const step = (p: MatchesPhase): string => (p.probes === 0 ? `${p.name}: no probe` : `${p.name} ${whole(p.readyzMaxMs)} / ${whole(p.loopLagMaxMs)}`);
    lines.push(`| worst /readyz / lag ms by step | ${m.phases.map(step).join("; ")} |`);
  }
  lines.push(`| other processes on the machine meanwhile, % of a core | ${whole(m.otherCpuPercent)} |`);
  if (m.openFirstEvent !== undefined) lines.push(`| time to first event on those streams p50 / p95 / p99 / max ms | ${percentiles(m.openFirstEvent)} |`);
  const d = m.delivery;
  lines.push(
    `| delivering: ${whole(m.events)} events, deliveries / expected, loss | ${whole(d.deliveries)} / ${whole(d.expected)}, ${d.lost + d.duplicates + d.reordered + d.drops === 0 ? "0" : `lost ${d.lost}, dup ${d.duplicates}, ooo ${d.reordered}, drops ${d.drops}`} |`,
  );
  lines.push(`| delivering: latency p50 / p99 ms | ${whole(d.p50Ms)} / ${whole(d.p99Ms)} |`);
  lines.push(
    `| delivering: server CPU µs per delivery / per event; node alone per delivery | ${fixed(d.serverCpuUsPerDelivery, 1)} / ${fixed(m.serverCpuUsPerEvent, 1)}; ${fixed(m.nodeCpuUsPerDelivery, 1)} |`,
  );
  lines.push("");
  return lines;
}

function goalsTable(result: BenchResult, touchline: PeerResult): string[] {
  const lines = ["## Issue 12 goals (one node, same run)", ""];
  lines.push("| goal | measured | |");
  lines.push("| --- | ---: | --- |");
  const p = touchline.publish;
  const m = touchline.matches;
  const goal = (label: string, value: number | undefined, shown: (v: number) => string, met: (v: number) => boolean, by: (v: number) => string): void => {
    if (value === undefined || !Number.isFinite(value)) {
      lines.push(`| ${label} | ${NOT_RUN} | |`);
      return;
    }
    lines.push(`| ${label} | ${shown(value)} | ${met(value) ? "met" : `**missed** (${by(value)})`} |`);
  };
  const times = (v: number): string => `${fixed(v, 2)}×`;
  const ms = (v: number): string => `${fixed(v, 1)} ms`;
  const overBy = (limit: number, unit: (v: number) => string) => (v: number) => `${unit(v - limit)} over, ${fixed(v / limit, 1)}× the bound`;
  const shortBy = (target: number) => (v: number) => `${fixed(target / v, 1)}× short`;
  const ofRounds = (pick: (r: PublishRound) => number): string =>
    p === undefined || p.rounds.length < 2 ? "" : ` (median of ${p.rounds.length} rounds: ${p.rounds.map((r) => times(pick(r))).join(", ")})`;
  goal(
    `single publishes/s ≥ ${GOALS.singleToRaw}× raw JetStream${ofRounds((r) => r.singleToRaw)}`,
    p?.singleToRaw,
    times,
    (v) => v >= GOALS.singleToRaw,
    shortBy(GOALS.singleToRaw),
  );
  goal(
    `batched events/s ≥ ${GOALS.batchedToRaw}× raw JetStream${ofRounds((r) => r.batchedToRaw)}`,
    p?.batchedToRaw,
    times,
    (v) => v >= GOALS.batchedToRaw,
    shortBy(GOALS.batchedToRaw),
  );
  goal(
    `single publish ack p99 < ${GOALS.ackP99Ms} ms (at that rate, the median round)`,
    p?.single.ack.p99Ms,
    ms,
    (v) => v < GOALS.ackP99Ms,
    overBy(GOALS.ackP99Ms, ms),
  );
  if (p !== undefined) lines.push(`| (for reference) batch ack p99, a whole batch of ${p.batchItems} | ${ms(p.batched.ack.p99Ms)} | |`);
  const label = m === undefined ? "many matches" : `${whole(m.matches)} matches`;
  goal(`${label}: JetStream consumers ≤ ${GOALS.consumers}`, m?.consumersMax, whole, (v) => v <= GOALS.consumers, overBy(GOALS.consumers, whole));
  goal(
    `${label}: RSS per idle match ≤ ${GOALS.bytesPerIdleMatch / 1024} KiB`,
    m?.bytesPerIdleMatch,
    (v) => `${kib(v)} KiB`,
    (v) => v <= GOALS.bytesPerIdleMatch,
    overBy(GOALS.bytesPerIdleMatch, (v) => `${kib(v)} KiB`),
  );
  goal(`${label}: /readyz never slower than ${GOALS.readyzMaxMs} ms`, m?.readyz.maxMs, ms, (v) => v <= GOALS.readyzMaxMs, overBy(GOALS.readyzMaxMs, ms));
  goal(`${label}: event-loop lag < ${GOALS.loopLagMs} ms`, m?.loopLagMaxMs, ms, (v) => v < GOALS.loopLagMs, overBy(GOALS.loopLagMs, ms));
  const nchan = result.peers.find((x) => x.name === REFERENCE_NCHAN);
  const channelsRatio = nchan?.channels && touchline.channels ? touchline.channels.serverCpuUsPerDelivery / nchan.channels.serverCpuUsPerDelivery : undefined;
  const alternated = touchline.channels?.alternated;
  const roundRatios =
    alternated === undefined || alternated.with !== REFERENCE_NCHAN ? "" : ` (alternating rounds: ${alternated.ratios.map(times).join(", ")})`;
  goal(
    `many-channels server CPU per delivery ≤ ${GOALS.channelsCpuToNchan}× nchan${roundRatios}`,
    channelsRatio,
    times,
    (v) => v <= GOALS.channelsCpuToNchan,
    (v) => `${fixed(v / GOALS.channelsCpuToNchan, 1)}× the bound`,
  );
  lines.push("");
  return lines;
}

function percentiles(f: FirstEventFigures | undefined): string {
  if (f === undefined) return NOT_RUN;
  // A peer that sends no byte before the first published event (the Node pattern) has nothing to time.
  if (f.streams === 0) return "nothing sent before the first event";
  return `${whole(f.p50Ms)} / ${whole(f.p95Ms)} / ${whole(f.p99Ms)} / ${whole(f.maxMs)}`;
}

function streamsOf(f: FirstEventFigures | undefined): string {
  return f === undefined ? NOT_RUN : whole(f.streams);
}

function mib(bytes: number): string {
  return fixed(bytes / 1024 / 1024, 1);
}
