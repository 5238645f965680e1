/** Steady fan-out: the idle streams, one channel, a few events per second: latency and loss. */
import { publishPaced } from '../publisher.ts'
import type { SteadyFigures } from '../results.ts'
import { DRAIN_TIMEOUT_MS, type ScenarioContext, deliveryFigures, describeDelivery, serverCpuMeter } from './context.ts'

/** Publishing may fall behind schedule by this much before the loop gives up. */
const SCHEDULE_SLACK_MS = 10_000

export async function runSteady(context: ScenarioContext, channel: string): Promise<SteadyFigures> {
  const { peer, pool, book, config } = context
  const events = Math.round(config.steadyRatePerSecond * config.steadySeconds)
  await pool.reset()
  const serverCpu = serverCpuMeter(peer)
  const sent = await publishPaced(peer, book, {
    channels: [channel],
    ratePerSecond: config.steadyRatePerSecond,
    maxEvents: events,
    maxMs: config.steadySeconds * 1000 + SCHEDULE_SLACK_MS,
  })
  const stats = await pool.awaitFinals(book.finals([channel]), DRAIN_TIMEOUT_MS)
  const figures: SteadyFigures = {
    ...deliveryFigures(stats, sent * config.streams, serverCpu()),
    streams: config.streams,
    events: sent,
    ratePerSecond: config.steadyRatePerSecond,
  }
  context.log(`  steady: ${describeDelivery(figures)}`)
  return figures
}
