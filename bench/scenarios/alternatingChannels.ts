/**
 * Many channels, two peers in alternating rounds: how the bench weighs Touchline against nchan.
 *
 * The goal is a ratio of the two peers' server CPU per delivery. Measured one peer after the other,
 * minutes apart, it moved by more than the margin between runs: slow spells of this shared machine
 * lifted one server's CPU per event by up to 1.8× within a run (four full runs of 2026-12-06 read
 * 1.51×, 2.48×, 2.06× and 1.63×, two runs of the scenario alone back to back 2.48× and 2.10×). Here
 * both peers hold their streams at once (both on the server core; the one not measured sits idle), are
 * warmed alike, then take turns: channelsRounds rounds, each peer measured channelsSeconds /
 * channelsRounds a round, in the order A B, B A, A B... so a spell, or a drift through the run, weighs
 * on both alike. Each peer's figures add up its rounds; each round's ratio is kept to show the spread.
 */
import { STREAMS_PER_CHANNEL } from "../bench-config.ts";
import { type MergedStats, addStats, noStats } from "../loadgen/generator-pool.ts";
import { publishPaced } from "../publisher.ts";
import type { ChannelsFigures } from "../results.ts";
import { channelsFigures, channelsLoad, openChannels, warmChannels } from "./channels.ts";
import { DRAIN_TIMEOUT_MS, type ScenarioContext, deliveryFigures, describeDelivery, serverCpuMeter } from "./context.ts";

export interface AlternatingChannels {
  measured: ChannelsFigures;
  baseline: ChannelsFigures;
}

/** Runs many channels on `measured` and `baseline` (each with its own generators and book) in alternating rounds. */
export async function runAlternatingChannels(measured: ScenarioContext, baseline: ScenarioContext, channelPrefix: string): Promise<AlternatingChannels> {
  const { config } = measured;
  const sides = [measured, baseline].map((context) => ({ context, tally: new RoundTally() }));
  const channels = await openChannels(measured, channelPrefix);
  await openChannels(baseline, channelPrefix);
  await Bun.sleep(config.settleMs);
  const warm: MergedStats[] = [];
  for (const { context } of sides) warm.push(await warmChannels(context, channels));
  const roundSeconds = config.channelsSeconds / config.channelsRounds;
  const ratios: number[] = [];
  for (let round = 0; round < config.channelsRounds; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const { context, tally } of order) {
      const { peer, pool, book } = context;
      await pool.reset();
      const serverCpu = serverCpuMeter(peer);
      const sent = await publishPaced(peer, book, channelsLoad(context, channels, roundSeconds));
      tally.add(await pool.awaitFinals(book.finals(channels), DRAIN_TIMEOUT_MS), sent, serverCpu());
    }
    ratios.push(sides[0]!.tally.lastCpuPerDelivery / sides[1]!.tally.lastCpuPerDelivery);
  }
  const [mine, theirs] = sides.map(({ context, tally }, i) => {
    const figures: ChannelsFigures = {
      ...channelsFigures(context, deliveryFigures(tally.stats, tally.sent * STREAMS_PER_CHANNEL, tally.serverCpuUs), warm[i]!, tally.sent),
      alternated: { with: sides[1 - i]!.context.peer.name, rounds: config.channelsRounds, ratios: i === 0 ? ratios : ratios.map((r) => 1 / r) },
    };
    return figures;
  });
  measured.log(`  channels, in ${config.channelsRounds} rounds alternating with ${baseline.peer.name}: ${describeDelivery(mine!)}`);
  measured.log(`  ${baseline.peer.name} in the same rounds: ${describeDelivery(theirs!)}`);
  measured.log(`  server CPU per delivery ÷ ${baseline.peer.name}'s, round by round: ${ratios.map((r) => `${r.toFixed(2)}×`).join(" ")}`);
  return { measured: mine!, baseline: theirs! };
}

/** One peer's rounds added up. */
class RoundTally {
  readonly stats: MergedStats = noStats();
  sent = 0;
  serverCpuUs = 0;
  /** Server CPU per delivery of the last round added, µs. */
  lastCpuPerDelivery = Number.NaN;

  add(round: MergedStats, sent: number, serverCpuUs: number): void {
    addStats(this.stats, { ...round, latency: round.latency.snapshot() });
    this.sent += sent;
    this.serverCpuUs += serverCpuUs;
    this.lastCpuPerDelivery = round.deliveries === 0 ? Number.NaN : serverCpuUs / round.deliveries;
  }
}
