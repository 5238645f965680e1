/**
 * Smoke test of the benchmark itself: a tiny run against real peers (the Node pattern, bare Bun,
 * nchan when installed, Touchline when src/main.ts exists) must deliver every event exactly once
 * and in order, and produce every figure. Never a timed assertion: speed is the bench's output,
 * not its test.
 */
import { describe, expect, test } from 'bun:test'
import { runBench } from '../bench/bench.ts'
import { benchConfig } from '../bench/bench-config.ts'
import { splitCores } from '../bench/machine.ts'
import { nchanInstalled } from '../bench/peers/nchan-install.ts'
import { touchlineAvailable } from '../bench/peers/touchline-peer.ts'
import { renderMarkdown } from '../bench/report/markdown.ts'
import { renderSvg } from '../bench/report/svg-chart.ts'
import type { BenchResult, DeliveryFigures } from '../bench/results.ts'

const SMOKE_STREAMS = 200
const TEST_TIMEOUT_MS = 60_000

function smokeConfig() {
  return {
    ...benchConfig({ quick: true, streams: SMOKE_STREAMS }),
    steadySeconds: 2,
    burstEvents: 100,
    channels: 5,
    channelsRatePerSecond: 100,
    channelsSeconds: 1,
    settleMs: 300,
  }
}

function expectExactDelivery(figures: DeliveryFigures | undefined): void {
  expect(figures).toBeDefined()
  const f = figures as DeliveryFigures
  expect(f.expected).toBeGreaterThan(0)
  expect({ lost: f.lost, duplicates: f.duplicates, reordered: f.reordered, foreign: f.foreign, drops: f.drops }).toEqual({
    lost: 0,
    duplicates: 0,
    reordered: 0,
    foreign: 0,
    drops: 0,
  })
  expect(f.deliveries).toBe(f.expected)
  for (const value of [f.p50Ms, f.p99Ms, f.maxMs, f.serverCpuUsPerDelivery, f.generatorCpuUsPerDelivery]) {
    expect(Number.isFinite(value)).toBe(true)
  }
  expect(f.p50Ms).toBeLessThanOrEqual(f.p99Ms)
  expect(f.p99Ms).toBeLessThanOrEqual(f.maxMs)
}

describe('bench smoke run', () => {
  const peers = ['node', 'bun']
  if (nchanInstalled()) peers.unshift('nchan')
  if (touchlineAvailable()) peers.push('touchline')
  let result: BenchResult

  test(
    `every peer (${peers.join(', ')}) delivers everything exactly once and yields every figure`,
    async () => {
      result = await runBench({
        config: smokeConfig(),
        peers,
        cores: splitCores(navigator.hardwareConcurrency, Bun.which('taskset') !== null),
        install: false,
        log: () => {},
      })
      expect(result.peers.map((p) => p.name)).toEqual(peers)
      for (const peer of result.peers) {
        expect({ peer: peer.name, error: peer.error }).toEqual({ peer: peer.name, error: undefined })
        expect(peer.idle?.live).toBe(SMOKE_STREAMS)
        expect(Number.isFinite(peer.idle?.bytesPerStream)).toBe(true)
        expectExactDelivery(peer.steady)
        expectExactDelivery(peer.burst)
        expectExactDelivery(peer.channels)
        expect(peer.burst?.deliveriesPerSecond).toBeGreaterThan(0)
        expect(peer.storm?.live).toBe(SMOKE_STREAMS)
        expect(peer.storm?.failed).toBe(0)
        expect(peer.storm?.duplicates).toBe(0)
        expect(peer.storm?.reordered).toBe(0)
        // Resuming peers must lose nothing across the cut; the others have nothing to resume.
        expect(peer.storm?.lost).toBe(peer.resumes ? 0 : null)
      }
    },
    TEST_TIMEOUT_MS,
  )

  test('the run renders to a Markdown table and an SVG chart naming every peer', () => {
    const markdown = renderMarkdown(result, { command: 'test', chartFile: 'chart.svg' })
    const svg = renderSvg(result)
    expect(svg.startsWith('<svg')).toBe(true)
    for (const peer of result.peers) {
      expect(markdown).toContain(`| ${peer.title} |`)
      expect(svg).toContain(peer.title)
    }
    expect(markdown).not.toContain('| n/a | n/a |')
  })
})
