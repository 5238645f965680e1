/**
 * Smoke test of the benchmark itself: a tiny run against real peers (the Node pattern, bare Bun,
 * nchan when installed, Touchline when src/main.ts exists) must deliver every event exactly once
 * and in order, and produce every figure. Never a timed assertion: speed is the bench's output,
 * not its test.
 */
import { describe, expect, test } from "bun:test";
import { SseParser } from "../src/sse/parse.ts";
import { runBench } from "../bench/bench.ts";
import { type ScenarioGroup, benchConfig } from "../bench/bench-config.ts";
import { HttpResponseReader } from "../bench/loadgen/http-response.ts";
import { LatencyHistogram } from "../bench/loadgen/latency-histogram.ts";
import { TickScanner } from "../bench/loadgen/tick-scanner.ts";
import { splitCores } from "../bench/machine.ts";
import { nchanInstalled } from "../bench/peers/nchan-install.ts";
import { touchlineAvailable } from "../bench/peers/touchline-peer.ts";
import { renderMarkdown } from "../bench/report/markdown.ts";
import { renderSvg } from "../bench/report/svg-chart.ts";
import type { BenchResult, DeliveryFigures, SteadyFigures } from "../bench/results.ts";
import { medianRound } from "../bench/scenarios/steady.ts";
import { decodeTick, encodeTickEnvelope } from "../bench/tick.ts";

const SMOKE_STREAMS = 200;
/** The smoke run takes 50 s on a quiet machine (five peers, every scenario): room for a loaded one. */
const TEST_TIMEOUT_MS = 150_000;

function smokeConfig() {
  return {
    ...benchConfig({ quick: true, streams: SMOKE_STREAMS }),
    steadySeconds: 1,
    // Two rounds, so the median-round path runs too (a full run has three).
    steadyRounds: 2,
    burstEvents: 100,
    channels: 5,
    channelsRatePerSecond: 100,
    channelsSeconds: 0.5,
    channelsWarmupSeconds: 0.5,
    // Two rounds, so Touchline and nchan take turns both ways (a full run has four).
    channelsRounds: 2,
    settleMs: 200,
    holdStreams: 300,
    clusterHoldStreams: 600,
    holdEvents: 3,
    holdRatePerSecond: 10,
    // Small, so the split over several generator processes is exercised too.
    streamsPerGenerator: 250,
    // Touchline nodes refuse past 400 streams: the limit scenario asks for 450.
    touchlineStreamCap: 400,
    overCapStreams: 50,
    // Issue 12's scenarios run in a test of their own (below), small: publish loads of half a second, 300 matches.
    scenarios: ["fanout", "channels", "hold"] as ScenarioGroup[],
    publishSeconds: 0.5,
    publishWarmupSeconds: 0.2,
    manyMatches: 300,
    manyMatchesStreamed: 10,
    manyMatchesRounds: 1,
  };
}

function expectExactDelivery(figures: DeliveryFigures | undefined): void {
  expect(figures).toBeDefined();
  const f = figures as DeliveryFigures;
  expect(f.expected).toBeGreaterThan(0);
  expect({ lost: f.lost, duplicates: f.duplicates, reordered: f.reordered, foreign: f.foreign, drops: f.drops }).toEqual({
    lost: 0,
    duplicates: 0,
    reordered: 0,
    foreign: 0,
    drops: 0,
  });
  expect(f.deliveries).toBe(f.expected);
  for (const value of [f.p50Ms, f.p99Ms, f.maxMs, f.serverCpuUsPerDelivery, f.generatorCpuUsPerDelivery]) {
    expect(Number.isFinite(value)).toBe(true);
  }
  expect(f.p50Ms).toBeLessThanOrEqual(f.p99Ms);
  expect(f.p99Ms).toBeLessThanOrEqual(f.maxMs);
}

describe("bench smoke run", () => {
  const peers = ["node", "bun"];
  if (nchanInstalled()) peers.unshift("nchan");
  if (touchlineAvailable()) peers.push("touchline", "touchline3");
  let result: BenchResult;

  test(
    `every peer (${peers.join(", ")}) delivers everything exactly once and yields every figure`,
    async () => {
      result = await runBench({
        config: smokeConfig(),
        peers,
        cores: splitCores(navigator.hardwareConcurrency, Bun.which("taskset") !== null),
        install: false,
        log: () => {},
      });
      expect(result.peers.map((p) => p.name)).toEqual(peers);
      for (const peer of result.peers) {
        expect({ peer: peer.name, error: peer.error }).toEqual({ peer: peer.name, error: undefined });
        expect(peer.idle?.live).toBe(SMOKE_STREAMS);
        expect(Number.isFinite(peer.idle?.bytesPerStream)).toBe(true);
        expectExactDelivery(peer.steady);
        expectExactDelivery(peer.burst);
        expectExactDelivery(peer.channels);
        expectExactDelivery(peer.hold);
        expect(Number.isFinite(peer.hold?.bytesPerStream)).toBe(true);
        expect(peer.burst?.deliveriesPerSecond).toBeGreaterThan(0);
        expect(peer.storm?.live).toBe(SMOKE_STREAMS);
        expect(peer.storm?.failed).toBe(0);
        expect(peer.storm?.duplicates).toBe(0);
        expect(peer.storm?.reordered).toBe(0);
        // Resuming peers must lose nothing across the cut; the others have nothing to resume.
        expect(peer.storm?.lost).toBe(peer.resumes ? 0 : null);
        if (peer.name === "touchline" || peer.name === "nchan") {
          // Many channels on the two is one scenario in alternating rounds, both peers up at once.
          const other = peer.name === "touchline" ? "nchan" : "touchline";
          if (peers.includes(other)) {
            expect(peer.channels?.alternated?.with).toBe(other);
            // One ratio per round. Their values are not judged at this size: a round of 0.25 s is a tick or two
            // of /proc's 10 ms CPU clock, and may read none (the full run's rounds are 5 s).
            expect(peer.channels?.alternated?.rounds).toBe(2);
            expect(peer.channels?.alternated?.ratios).toHaveLength(2);
          } else expect(peer.channels?.alternated).toBeUndefined();
        } else expect(peer.channels?.alternated).toBeUndefined();
        if (peer.name === "touchline") {
          // Asked for 50 past its cap of 400: exactly those are refused, all in the stream (200, one
          // touchline.refused event), and the rest still deliver.
          expect(peer.limit).toMatchObject({ cap: 400, attempted: 450, live: 400, refused: 50, refusedInStream: 50, otherFailures: 0 });
          expectExactDelivery(peer.limit?.delivery);
        }
      }
    },
    TEST_TIMEOUT_MS,
  );

  test("the run renders to a Markdown table and an SVG chart naming every peer", () => {
    const markdown = renderMarkdown(result, { command: "test", chartFile: "chart.svg" });
    const svg = renderSvg(result);
    expect(svg.startsWith("<svg")).toBe(true);
    for (const peer of result.peers) {
      expect(markdown).toContain(`| ${peer.title} |`);
      expect(svg).toContain(peer.title);
      expect(peer.steady?.roundsP99Ms).toHaveLength(2);
    }
    expect(markdown).toContain("the median of 2 rounds by p99");
    expect(markdown).toContain("Steady p99 of each round, ms: ");
    expect(markdown).not.toContain("| n/a | n/a |");
  });

  test("time to first event is measured on every Touchline stream opened", () => {
    // Touchline sends its snapshot at once (the Node pattern sends nothing before the first event).
    for (const peer of result.peers.filter((p) => p.name.startsWith("touchline"))) {
      expect(peer.idle?.firstEvent?.streams).toBe(SMOKE_STREAMS);
      expect(peer.hold?.firstEvent?.streams).toBe(peer.hold?.streams);
      expect(peer.hold!.firstEvent!.p50Ms).toBeLessThanOrEqual(peer.hold!.firstEvent!.p99Ms);
    }
    expect(renderMarkdown(result, { command: "test", chartFile: null })).toContain("## Time to first event");
  });
});

describe.skipIf(!touchlineAvailable())("bench issue-12 scenarios on one Touchline node", () => {
  test(
    "publish against raw JetStream and many matches yield every figure, deliveries exact",
    async () => {
      const result = await runBench({
        config: { ...smokeConfig(), scenarios: ["publish", "matches"] },
        peers: ["touchline"],
        cores: splitCores(navigator.hardwareConcurrency, Bun.which("taskset") !== null),
        install: false,
        log: () => {},
      });
      const touchline = result.peers[0]!;
      expect(touchline.error).toBeUndefined();
      const publish = touchline.publish!;
      // One round (the quick size): raw JetStream before and after it.
      expect(publish.raw).toHaveLength(2);
      expect(publish.rounds).toHaveLength(1);
      expect(publish.singleToRaw).toBe(publish.rounds[0]!.singleToRaw);
      for (const load of [...publish.raw, publish.single, publish.batched]) {
        expect(load.events).toBeGreaterThan(0);
        expect(load.errors).toBe(0);
        expect(load.ack.p50Ms).toBeLessThanOrEqual(load.ack.p99Ms);
        expect(Number.isFinite(load.natsCpuUsPerEvent)).toBe(true);
        expect(load.natsMessagesInPerEvent).toBeGreaterThanOrEqual(1);
      }
      expect(publish.raw[0]!.nodeCpuUsPerEvent).toBeNull();
      expect(Number.isFinite(publish.single.nodeCpuUsPerEvent)).toBe(true);
      expect(publish.batched.events % publish.batchItems).toBe(0);
      const matches = touchline.matches!;
      expect(matches.matches).toBe(300);
      // Every match has its owner actor; the stream tail keeps the consumers far below one per match.
      expect(matches.ownedMatches).toBeGreaterThanOrEqual(300);
      expect(matches.consumersMax).toBeLessThan(100);
      expectExactDelivery(matches.delivery);
      expect(matches.delivery.expected).toBe(10 * matches.streamsPerMatch);
      expect(matches.openFirstEvent?.streams).toBe(10 * matches.streamsPerMatch);
      expect(matches.readyz.count).toBeGreaterThan(0);
      expect(matches.loopLagSamples).toBeGreaterThan(0);
      expect(matches.phases?.map((p) => p.name)).toContain("storing");
      const markdown = renderMarkdown(result, { command: "test", chartFile: null });
      expect(markdown).toContain("## Publishing: Touchline against raw JetStream");
      expect(markdown).toContain("## 300 matches on one node (fresh start)");
      expect(markdown).toContain("## Issue 12 goals (one node, same run)");
      expect(markdown).not.toContain("| n/a | n/a |");
    },
    TEST_TIMEOUT_MS,
  );
});

const encoder = new TextEncoder();

/** Splits bytes at random places (seeded, so a failure replays). */
function randomSplits(bytes: Uint8Array, seed: number): Uint8Array[] {
  let state = seed;
  const next = (): number => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
  const pieces: Uint8Array[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const size = 1 + Math.floor(next() * 40);
    pieces.push(bytes.subarray(pos, pos + size));
    pos += size;
  }
  return pieces;
}

interface Seen {
  ticks: Array<[number, number, boolean]>;
  foreign: number;
  refused: number;
}

function scan(channel: string, pieces: Uint8Array[]): { seen: Seen; scanner: TickScanner } {
  const seen: Seen = { ticks: [], foreign: 0, refused: 0 };
  const scanner = new TickScanner(channel, {
    onTick: (seq, ts, ok) => seen.ticks.push([seq, ts, ok]),
    onForeign: () => seen.foreign++,
    onRefused: () => seen.refused++,
  });
  for (const piece of pieces) scanner.feed(piece);
  return { seen, scanner };
}

/** What the project's spec-faithful parser makes of the same text: the reference. */
function reference(channel: string, text: string): { seen: Seen; lastEventId: string } {
  const seen: Seen = { ticks: [], foreign: 0, refused: 0 };
  const parser = new SseParser({
    onEvent: (event) => {
      if (event.type === "snapshot") return;
      if (event.type === "touchline.refused") return void seen.refused++;
      const tick = decodeTick(event.data);
      if (tick === null) seen.foreign++;
      else seen.ticks.push([tick.seq, tick.ts, tick.match === channel]);
    },
  });
  parser.feed(text);
  return { seen, lastEventId: parser.lastEventId };
}

describe("TickScanner reads streams as the spec-faithful parser does", () => {
  const streams: Record<string, string> = {
    "Touchline-like, with snapshot, retry and pings":
      'retry: 1000\n\nid: 0-5\nevent: snapshot\ndata: {"match":"m1","state":{}}\n\n' +
      Array.from(
        { length: 30 },
        (_, i) => `id: 0-${i + 6}\nevent: tick\ndata: {"match":"m1","data":{"seq":${i + 1}},"ts":${1_700_000_000_000 + i}}\n\n: ping\n\n`,
      ).join(""),
    "relay peers: comment then id and data only": `: hi\n\n${Array.from({ length: 30 }, (_, i) => `id: ${i + 1}\ndata: ${encodeTickEnvelope("m1", i + 1, 1_700_000_000_000 + i)}\n\n`).join("")}`,
    "CRLF line ends (careful path taken mid-stream)":
      `id: a\ndata: ${encodeTickEnvelope("m1", 1, 5)}\n\n` +
      `id: b\r\ndata: ${encodeTickEnvelope("m1", 2, 6)}\r\n\r\nid: c\rdata: ${encodeTickEnvelope("m1", 3, 7)}\r\r`,
    "CR arrives only after the last id line (the id must survive the hand-over)":
      `id: a\ndata: ${encodeTickEnvelope("m1", 1, 5)}\n\nid: b\nevent: snapshot\ndata: {}\n\n` + `data: ${encodeTickEnvelope("m1", 2, 6)}\r\n\r\n`,
    "data split over two lines, other channel, not a tick, keys reordered":
      `data: {"match":"m1",\ndata: "data":{"seq":1},"ts":9}\n\n` +
      `data: ${encodeTickEnvelope("other", 2, 10)}\n\n` +
      'data: {"hello":"world"}\n\n' +
      'id: z\ndata: {"ts": 11, "data": {"seq": 3}, "match": "m1"}\n\n' +
      'data: {"match":"m1","data":{"seq":4.5},"ts":12}\n\n',
    "Touchline refusing a stream: retry, one touchline.refused event without id":
      'retry: 2345\n\nevent: touchline.refused\ndata: {"error":"at_capacity","message":"full","retryAfterMs":2345}\n\n',
    "a refusal with CRLF line ends, after a tick (careful path)": `id: a\ndata: ${encodeTickEnvelope("m1", 1, 5)}\n\nretry: 10\r\n\r\nevent: touchline.refused\r\ndata: {"error":"draining"}\r\n\r\n`,
    "BOM, empty id resets, NUL in id ignored": `\uFEFFid: x\ndata: ${encodeTickEnvelope("m1", 1, 1)}\n\nid\ndata: ${encodeTickEnvelope("m1", 2, 2)}\n\nid: bad\0\ndata: ${encodeTickEnvelope("m1", 3, 3)}\n\n`,
  };
  for (const [name, text] of Object.entries(streams)) {
    test(name, () => {
      const expected = reference("m1", text);
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const { seen, scanner } = scan("m1", randomSplits(encoder.encode(text), seed));
        expect(seen).toEqual(expected.seen);
        expect(scanner.lastEventId).toBe(expected.lastEventId);
      }
    });
  }

  test("a touchline.refused event is a refusal: neither a tick nor foreign, and it moves no id", () => {
    const refusal = 'retry: 2345\n\nevent: touchline.refused\ndata: {"error":"at_capacity","message":"full","retryAfterMs":2345}\n\n';
    const { seen, scanner } = scan("m1", [encoder.encode(`id: 4\ndata: ${encodeTickEnvelope("m1", 1, 1)}\n\n${refusal}`)]);
    expect(seen).toEqual({ ticks: [[1, 1, true]], foreign: 0, refused: 1 });
    expect(scanner.lastEventId).toBe("4");
  });

  test("reset() drops a half-read event but keeps the last event id", () => {
    const { seen, scanner } = scan("m1", [encoder.encode(`id: 7\ndata: ${encodeTickEnvelope("m1", 1, 1)}\n\nid: 8\ndata: {"match"`)]);
    scanner.reset();
    scanner.feed(encoder.encode(`data: ${encodeTickEnvelope("m1", 2, 2)}\n\n`));
    expect(seen.ticks.map((t) => t[0])).toEqual([1, 2]);
    expect(scanner.lastEventId).toBe("7");
  });
});

describe("HttpResponseReader", () => {
  const body = "id: 1\ndata: x\n\n".repeat(20);
  const chunked =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
    Array.from({ length: 20 }, () => `${(15).toString(16)};ext=1\r\nid: 1\ndata: x\n\n\r\n`).join("") +
    "0\r\n\r\n";

  test("decodes a chunked body split anywhere, and stops at the last chunk", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const received: string[] = [];
      let status = 0;
      const reader = new HttpResponseReader({
        onHead: (s) => (status = s),
        onBody: (bytes) => received.push(new TextDecoder().decode(bytes)),
        onFramingError: (reason) => {
          throw new Error(reason);
        },
      });
      for (const piece of randomSplits(encoder.encode(`${chunked}garbage after the end`), seed)) reader.feed(piece);
      expect(status).toBe(200);
      expect(received.join("")).toBe(body);
    }
  });

  test("passes an identity body through and reports bad framing", () => {
    const received: string[] = [];
    const errors: string[] = [];
    const reader = new HttpResponseReader({
      onHead: () => {},
      onBody: (bytes) => received.push(new TextDecoder().decode(bytes)),
      onFramingError: (reason) => errors.push(reason),
    });
    reader.feed(encoder.encode("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nabc"));
    reader.feed(encoder.encode("def"));
    expect(received.join("")).toBe("abcdef");

    const broken = new HttpResponseReader({ onHead: () => {}, onBody: () => {}, onFramingError: (reason) => errors.push(reason) });
    broken.feed(encoder.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
    expect(errors).toEqual(["bad chunk size"]);
  });
});

describe("LatencyHistogram", () => {
  test("percentiles and merge across generator processes", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let ms = 1; ms <= 50; ms++) a.record(ms);
    for (let ms = 51; ms <= 100; ms++) b.record(ms);
    b.record(250_000);
    a.merge(b.snapshot());
    expect(a.count).toBe(101);
    expect(a.percentile(0.5)).toBe(51);
    expect(a.percentile(0.99)).toBe(100);
    expect(a.summary().max).toBe(250_000);
    expect(a.percentile(1)).toBe(250_000);
  });
});

describe("steady rounds", () => {
  const round = (p99Ms: number, lost = 0): SteadyFigures => ({
    deliveries: 100 - lost,
    expected: 100,
    lost,
    duplicates: 0,
    reordered: 0,
    foreign: 0,
    drops: 0,
    p50Ms: p99Ms / 2,
    p99Ms,
    maxMs: p99Ms + 10,
    serverCpuUsPerDelivery: p99Ms / 10,
    generatorCpuUsPerDelivery: 1,
    streams: 10,
    events: 10,
    ratePerSecond: 5,
    roundsP99Ms: [],
  });

  test("the median round by p99 is reported whole, with every round p99 in run order", () => {
    const f = medianRound([round(120), round(80), round(95)]);
    expect([f.p50Ms, f.p99Ms, f.maxMs, f.serverCpuUsPerDelivery]).toEqual([47.5, 95, 105, 9.5]);
    expect(f.roundsP99Ms).toEqual([120, 80, 95]);
  });

  test("a loss in any round is counted, even when that round is not the median", () => {
    const f = medianRound([round(80), round(95), round(300, 7)]);
    expect(f.p99Ms).toBe(95);
    expect(f.lost).toBe(7);
    expect([f.deliveries, f.expected, f.events]).toEqual([293, 300, 30]);
  });
});
