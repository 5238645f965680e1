/**
 * Steady fan-out: the idle streams, one channel, a few events per second: latency and loss.
 *
 * Run in several rounds: on this shared machine one 20 s round moved a peer's p99 by up to 2× from one
 * run to the next, so the round with the median p99 is reported (its p50, p99, max and CPU together),
 * with every round's p99 beside it. Losses add up over all rounds: one bad round is never hidden.
 */
import { publishPaced } from "../publisher.ts";
import type { SteadyFigures } from "../results.ts";
import { DRAIN_TIMEOUT_MS, type ScenarioContext, deliveryFigures, describeDelivery, serverCpuMeter } from "./context.ts";

/** Publishing may fall behind schedule by this much before the loop gives up. */
const SCHEDULE_SLACK_MS = 10_000;

export async function runSteady(context: ScenarioContext, channel: string): Promise<SteadyFigures> {
  const rounds: SteadyFigures[] = [];
  for (let r = 0; r < context.config.steadyRounds; r++) rounds.push(await runRound(context, channel));
  const figures = medianRound(rounds);
  if (rounds.length > 1) context.log(`  steady: median of ${rounds.length} rounds (p99 ${figures.roundsP99Ms.join(", ")} ms)`);
  return figures;
}

async function runRound(context: ScenarioContext, channel: string): Promise<SteadyFigures> {
  const { peer, pool, book, config } = context;
  const events = Math.round(config.steadyRatePerSecond * config.steadySeconds);
  await pool.reset();
  const serverCpu = serverCpuMeter(peer);
  const sent = await publishPaced(peer, book, {
    channels: [channel],
    ratePerSecond: config.steadyRatePerSecond,
    maxEvents: events,
    maxMs: config.steadySeconds * 1000 + SCHEDULE_SLACK_MS,
  });
  const stats = await pool.awaitFinals(book.finals([channel]), DRAIN_TIMEOUT_MS);
  const figures: SteadyFigures = {
    ...deliveryFigures(stats, sent * config.streams, serverCpu()),
    streams: config.streams,
    events: sent,
    ratePerSecond: config.steadyRatePerSecond,
    roundsP99Ms: [],
  };
  context.log(`  steady: ${describeDelivery(figures)}`);
  return figures;
}

/** The round with the median p99, with counts (deliveries, events, every kind of loss) summed over all rounds. */
export function medianRound(rounds: SteadyFigures[]): SteadyFigures {
  const median = [...rounds].sort((a, b) => a.p99Ms - b.p99Ms)[Math.floor((rounds.length - 1) / 2)]!;
  const sum = (key: "deliveries" | "expected" | "lost" | "duplicates" | "reordered" | "foreign" | "drops" | "events"): number =>
    rounds.reduce((total, r) => total + r[key], 0);
  return {
    ...median,
    deliveries: sum("deliveries"),
    expected: sum("expected"),
    lost: sum("lost"),
    duplicates: sum("duplicates"),
    reordered: sum("reordered"),
    foreign: sum("foreign"),
    drops: sum("drops"),
    events: sum("events"),
    roundsP99Ms: rounds.map((r) => r.p99Ms),
  };
}
