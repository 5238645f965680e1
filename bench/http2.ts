/**
 * What HTTP/2 costs a node against HTTP/1.1, both over TLS (README, "HTTP/2"): node RSS per open stream
 * and node CPU per delivery, as ratios against the HTTP/1.1 figures measured in the same run, and
 * whether anything is left behind when the streams go.
 *
 *   ulimit -n 20000; taskset -c 0 node_modules/.bin/bun bench/http2.ts
 *     [--streams=3000] [--events=100] [--per-connection=100] [--rounds=2] [--cycles=3] [--publishers=1] [--modes=h1,h2x1,h2x100]
 *
 * Three transports, each round in this order, each on its own fresh nats-server and node (TLS with a
 * self-signed certificate made here by openssl; node and nats-server pinned to core 1, this generator
 * and publisher on core 0):
 *   h1       one TLS connection per stream, HTTP/1.1 (raw sockets, chunked framing decoded here)
 *   h2 x1    one TLS connection per stream, HTTP/2: many viewers, one stream each (what browsers do)
 *   h2 xK    K streams per TLS connection, HTTP/2 (--per-connection): one client holding many streams
 * All streams follow one match. With every stream open and the node settled, RSS is read; then
 * `events` small events are published back to back and every stream must get every one exactly once
 * (count, strictly increasing ids, sum of sequences, last id). Node CPU (utime+stime from /proc) from
 * the first publish to the last delivery, divided by streams x events. Then every connection is
 * closed, the node must free every stream (touchline_streams_open back to 0), and the streams are
 * opened and closed again (`cycles` in all): the node's RSS after each close must level off.
 * The generator's own CPU per delivery is printed too. Loopback only; bounded in count and time
 * (a stalled phase fails after two minutes, saying what is missing).
 */
import type { Socket } from "bun";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { cpuMicros, residentBytes } from "./proc-stats.ts";
import { numberArg } from "./scriptArgs.ts";
import { HttpResponseReader } from "./loadgen/http-response.ts";
import { startNats, startNode, waitFor, type NodeFixture } from "../test/helpers/cluster.ts";
import { RawH2Connection } from "../test/helpers/h2Frames.ts";
import { parsePrometheus } from "../test/helpers/promParse.ts";
import { SseParser } from "../src/sse/parse.ts";

const STREAMS = numberArg("streams", 3000);
const EVENTS = numberArg("events", 100);
const PER_CONNECTION = numberArg("per-connection", 100);
const ROUNDS = numberArg("rounds", 2);
/** Publishes in flight at once (1: back to back, each event its own write to every stream). */
const PUBLISHERS = numberArg("publishers", 1);
/** Open/close cycles of all the streams per round (the first one carries the events). */
const CYCLES = numberArg("cycles", 3);
/** Connections being set up at once (TLS handshakes). */
const OPEN_CONCURRENCY = 100;
/** After the last stream opened: the node collects the opening's garbage 0.5 s after the churn stops. */
const SETTLE_MS = 3000;
const OPEN_TIMEOUT_MS = 120_000;
const DELIVERY_TIMEOUT_MS = 120_000;
const FREE_TIMEOUT_MS = 20_000;
const NODE_CORE = 1;

type Mode = { name: string; h2: boolean; perConnection: number };
const ALL_MODES: Mode[] = [
  { name: "h1", h2: false, perConnection: 1 },
  { name: "h2 x1", h2: true, perConnection: 1 },
  { name: `h2 x${PER_CONNECTION}`, h2: true, perConnection: PER_CONNECTION },
];
/** `--modes=h1,h2x1`: a subset (the ratios need h1). */
const modesArg = process.argv
  .find((a) => a.startsWith("--modes="))
  ?.split("=")[1]
  ?.split(",");
const MODES = modesArg ? ALL_MODES.filter((m) => modesArg.includes(m.name.replace(" ", ""))) : ALL_MODES;

interface Figures {
  kibPerStream: number;
  microsPerDelivery: number;
  generatorMicrosPerDelivery: number;
  deliverSeconds: number;
  publishSeconds: number;
  exactStreams: number;
  freeSeconds: number;
  kibRetainedPerStream: number;
  /** RSS growth after close from one open/close cycle to the next, per stream: a leak shows here. */
  kibGrowthPerStreamPerCycle: number;
}

/** Per stream: what arrived after the snapshot. */
class Tally {
  snapshot = false;
  /** HTTP/2: the stream was reset by the server (its code), or ended. */
  reset: number | "end" | undefined;
  bytes = 0;
  count = 0;
  lastSeq = 0;
  seqSum = 0;
  ordered = true;
  readonly parser = new SseParser({
    onEvent: (e) => {
      if (e.type === "snapshot") {
        this.snapshot = true;
        return;
      }
      const seq = Number(e.lastEventId.slice(0, e.lastEventId.indexOf("@")));
      if (!(seq > this.lastSeq)) this.ordered = false;
      this.lastSeq = seq;
      this.seqSum += seq;
      this.count++;
    },
  });
  private readonly decoder = new TextDecoder();
  feed(bytes: Uint8Array): void {
    this.bytes += bytes.byteLength;
    this.parser.feed(this.decoder.decode(bytes, { stream: true }));
  }
}

const dir = mkdtempSync(join(tmpdir(), "touchline-h2bench-"));
const certFile = join(dir, "node.crt");
const keyFile = join(dir, "node.key");
const made = Bun.spawnSync([
  "openssl",
  "req",
  "-x509",
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:prime256v1",
  "-nodes",
  "-keyout",
  keyFile,
  "-out",
  certFile,
  "-days",
  "1",
  "-subj",
  "/CN=touchline-bench",
  "-addext",
  "subjectAltName=IP:127.0.0.1,DNS:localhost",
]);
if (made.exitCode !== 0) throw new Error(`openssl failed: ${made.stderr.toString()}`);
const ca = readFileSync(certFile, "utf8");
const trusted = { tls: { ca } } as RequestInit;

async function metric(base: string, name: string): Promise<number> {
  let total = 0;
  for (const f of parsePrometheus(await (await fetch(`${base}/metrics`, trusted)).text()).values())
    for (const s of f.samples) if (s.name === name) total += s.value;
  return total;
}

async function publishOk(base: string, match: string, body: unknown): Promise<string> {
  const res = await fetch(`${base}/matches/${match}/events`, {
    ...trusted,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { id: string };
  if (res.status !== 201) throw new Error(`publish answered ${res.status} ${JSON.stringify(json)}`);
  return json.id;
}

/** Runs `task(i)` for i < count, `concurrency` at a time. */
async function pooled(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

interface Fleet {
  tallies: Tally[];
  close(): void;
  /** What the connections of incomplete streams look like (for a stall report). */
  diagnose(incomplete: Set<Tally>): string;
}

async function openHttp1(node: NodeFixture, path: string): Promise<Fleet> {
  const tallies: Tally[] = [];
  const sockets: Socket<undefined>[] = [];
  await pooled(STREAMS, OPEN_CONCURRENCY, async () => {
    const tally = new Tally();
    tallies.push(tally);
    const reader = new HttpResponseReader({
      onHead: (status) => {
        if (status !== 200) throw new Error(`stream answered ${status}`);
      },
      onBody: (bytes) => tally.feed(bytes),
      onFramingError: (reason) => {
        throw new Error(`HTTP/1.1 framing: ${reason}`);
      },
    });
    // Bun drops what is written to a TLS socket before its handshake is done: write in the callback.
    await new Promise<void>((resolve, reject) => {
      void Bun.connect({
        hostname: "127.0.0.1",
        port: node.port,
        tls: { ca, serverName: "localhost" },
        socket: {
          handshake: (socket, ok, err) => {
            if (!ok) return reject(new Error(`TLS handshake: ${err?.message}`));
            socket.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\n\r\n`);
            sockets.push(socket);
            resolve();
          },
          data: (_s, b) => reader.feed(b),
          close: () => void (tally.reset = "end"),
        },
      }).catch(reject);
    });
  });
  return {
    tallies,
    close: () => sockets.forEach((s) => s.end()),
    diagnose: (incomplete) => {
      const closed = [...incomplete].filter((t) => t.reset !== undefined).length;
      const sample = [...incomplete].slice(0, 5).map((t) => `count ${t.count} bytes ${t.bytes}`);
      return `${incomplete.size} incomplete HTTP/1.1 streams, ${closed} of their sockets closed; e.g. ${sample.join("; ")}`;
    },
  };
}

async function openHttp2(node: NodeFixture, path: string, perConnection: number): Promise<Fleet> {
  const tallies: Tally[] = [];
  const conns: RawH2Connection[] = [];
  const connOf = new Map<Tally, RawH2Connection>();
  const connections = Math.ceil(STREAMS / perConnection);
  await pooled(connections, OPEN_CONCURRENCY, async (c) => {
    const conn = await RawH2Connection.connect({ port: node.port, ca });
    conns.push(conn);
    const here = Math.min(perConnection, STREAMS - c * perConnection);
    for (let i = 0; i < here; i++) {
      const tally = new Tally();
      tallies.push(tally);
      connOf.set(tally, conn);
      conn.get(path, {
        onReset: (code) => void (tally.reset = code),
        onEnd: () => void (tally.reset = "end"),
        onHeaders: (ok) => {
          if (!ok) throw new Error("HTTP/2 stream answered other than 200");
        },
        onData: (bytes) => tally.feed(bytes),
      });
    }
  });
  return {
    tallies,
    close: () => conns.forEach((c) => c.close()),
    diagnose: (incomplete) => {
      const their = new Set([...incomplete].map((t) => connOf.get(t)!));
      const sample = [...incomplete].slice(0, 5).map((t) => {
        const c = connOf.get(t)!;
        return `count ${t.count} bytes ${t.bytes} reset ${t.reset}, its connection: ${c.received} bytes received, SETTINGS ${c.settingsReceived}, error ${c.error}`;
      });
      return (
        `${incomplete.size} incomplete HTTP/2 streams on ${their.size} connections (${[...their].filter((c) => c.closed).length} closed, ` +
        `${[...their].filter((c) => c.goaway !== undefined).length} sent GOAWAY, ${[...their].map((c) => c.openStreams).reduce((a, b) => a + b, 0)} streams open on them); e.g. ${sample.join("; ")}`
      );
    },
  };
}

/** Moves a process (all its threads) to the node's core, away from the generator. */
function pin(pid: number): void {
  if (cpus().length < 2) return;
  Bun.spawnSync(["taskset", "-a", "-cp", String(NODE_CORE), String(pid)]);
}

/**
 * nats-server goes beside the node: left on the generator's core it answered the node's NATS probe late
 * while thousands of TLS handshakes were being made there, and the node (rightly) ended every stream.
 */
function pinNats(port: number): void {
  const found = Bun.spawnSync(["pgrep", "-f", `^nats-server .*-p ${port} `])
    .stdout.toString()
    .trim()
    .split("\n")
    .filter(Boolean);
  for (const pid of found) pin(Number(pid));
}

/** The node's warnings and errors (besides the open-publishing one), to show with the figures. */
function nodeWarnings(node: NodeFixture): string[] {
  return node
    .output()
    .split("\n")
    .filter((l) => /"level":"(warn|error)"/.test(l) && !l.includes("TOUCHLINE_JWT_SECRET"));
}

async function round(mode: Mode): Promise<Figures> {
  const nats = await startNats();
  const node = await startNode({
    natsUrl: nats.url,
    ready: false,
    env: { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, HTTP2: String(mode.h2), LOG_LEVEL: "warn" },
  });
  const base = `https://127.0.0.1:${node.port}`;
  let fleet: Fleet | undefined;
  try {
    await waitFor(async () => (await fetch(`${base}/readyz`, trusted)).status === 200, 30_000, `node ready\n${node.output()}`);
    pin(node.proc.pid);
    pinNats(nats.port);
    const match = `h2bench-${Date.now().toString(36)}`;
    const kickoff = await publishOk(base, match, { type: "kickoff" });
    await waitFor(async () => ((await (await fetch(`${base}/matches/${match}`, trusted)).json()) as { id: string }).id === kickoff, 10_000, "kickoff");
    await Bun.sleep(SETTLE_MS);
    const rssBefore = residentBytes([node.proc.pid]);
    const path = `/matches/${match}/events`;
    /** Opens every stream and waits for every snapshot (with a report of what is missing on timeout). */
    const openAll = async (): Promise<Fleet> => {
      const f = mode.h2 ? await openHttp2(node, path, mode.perConnection) : await openHttp1(node, path);
      fleet = f;
      const tallies = f.tallies;
      try {
        await waitFor(async () => tallies.length === STREAMS && tallies.every((t) => t.snapshot), OPEN_TIMEOUT_MS, `${STREAMS} snapshots`);
      } catch (err) {
        const incomplete = new Set(tallies.filter((t) => !t.snapshot));
        throw new Error(
          `${(err as Error).message}: ${tallies.length} streams asked for, ${f.diagnose(incomplete)}; ` +
            `${[...incomplete].filter((t) => t.bytes > 0).length} of them got some bytes; node holds ${await metric(base, "touchline_streams_open")} streams\n${nodeWarnings(node).join("\n")}`,
        );
      }
      return f;
    };
    /** Closes every connection, waits until the node freed every stream; the seconds that took. */
    const closeAll = async (f: Fleet): Promise<number> => {
      const t = performance.now();
      f.close();
      fleet = undefined;
      await waitFor(async () => (await metric(base, "touchline_streams_open")) === 0, FREE_TIMEOUT_MS, "every stream freed");
      return (performance.now() - t) / 1000;
    };
    const opened = await openAll();
    const tallies = opened.tallies;
    const open = await metric(base, "touchline_streams_open");
    if (open !== STREAMS) throw new Error(`node holds ${open} streams, expected ${STREAMS}`);
    await Bun.sleep(SETTLE_MS);
    const rssOpen = residentBytes([node.proc.pid]);

    const cpu0 = cpuMicros([node.proc.pid]);
    const gen0 = process.cpuUsage();
    const t0 = performance.now();
    const seqs: number[] = [];
    const pubProgress = setInterval(
      () => console.log(`  ... ${seqs.length}/${EVENTS} published, node CPU ${((cpuMicros([node.proc.pid]) - cpu0) / 1e6).toFixed(1)} s`),
      10_000,
    );
    await pooled(EVENTS, PUBLISHERS, async (i) => {
      const id = await publishOk(base, match, { type: "tick", data: { i, text: "a goal-line clearance" } });
      seqs.push(Number(id.slice(0, id.indexOf("@"))));
    });
    seqs.sort((a, b) => a - b);
    clearInterval(pubProgress);
    const publishSeconds = (performance.now() - t0) / 1000;
    const progress = setInterval(() => {
      const got = tallies.reduce((a, t) => a + Math.min(t.count, EVENTS), 0);
      console.log(
        `  ... ${got}/${STREAMS * EVENTS} delivered, ${tallies.filter((t) => t.count >= EVENTS).length} streams complete, node CPU ${((cpuMicros([node.proc.pid]) - cpu0) / 1e6).toFixed(1)} s`,
      );
    }, 10_000);
    try {
      await waitFor(async () => tallies.every((t) => t.count >= EVENTS), DELIVERY_TIMEOUT_MS, `${STREAMS * EVENTS} deliveries`);
    } catch (err) {
      const incomplete = new Set(tallies.filter((t) => t.count < EVENTS));
      throw new Error(
        `${(err as Error).message}: ${opened.diagnose(incomplete)}; node holds ${await metric(base, "touchline_streams_open")} streams, ` +
          `slow cuts ${await metric(base, "touchline_slow_clients_cut_total")}\n${nodeWarnings(node).join("\n")}`,
      );
    } finally {
      clearInterval(progress);
    }
    const deliverSeconds = (performance.now() - t0) / 1000;
    const nodeMicros = cpuMicros([node.proc.pid]) - cpu0;
    const gen = process.cpuUsage(gen0);
    await Bun.sleep(200); // room for a duplicate to show
    const expectedSum = seqs.reduce((a, b) => a + b, 0);
    const exactStreams = tallies.filter((t) => t.count === EVENTS && t.ordered && t.seqSum === expectedSum && t.lastSeq === seqs.at(-1)).length;

    const freeSeconds = await closeAll(opened);
    await Bun.sleep(SETTLE_MS);
    // Churn: the same streams opened and closed again; RSS after each close must level off.
    const rssAfterClose = [residentBytes([node.proc.pid])];
    for (let c = 2; c <= CYCLES; c++) {
      await closeAll(await openAll());
      await Bun.sleep(SETTLE_MS);
      rssAfterClose.push(residentBytes([node.proc.pid]));
    }
    for (const line of nodeWarnings(node)) console.log(`  node: ${line}`);
    const deliveries = STREAMS * EVENTS;
    return {
      kibPerStream: (rssOpen - rssBefore) / STREAMS / 1024,
      microsPerDelivery: nodeMicros / deliveries,
      generatorMicrosPerDelivery: (gen.user + gen.system) / deliveries,
      deliverSeconds,
      publishSeconds,
      exactStreams,
      freeSeconds,
      kibRetainedPerStream: (rssAfterClose[0]! - rssBefore) / STREAMS / 1024,
      kibGrowthPerStreamPerCycle: CYCLES > 1 ? (rssAfterClose.at(-1)! - rssAfterClose[0]!) / (CYCLES - 1) / STREAMS / 1024 : 0,
    };
  } finally {
    fleet?.close();
    await node.kill();
    await nats.stop();
  }
}

const results = new Map<string, Figures[]>(MODES.map((m) => [m.name, []]));
console.log(`${STREAMS} streams on one match, ${EVENTS} events, ${ROUNDS} rounds; TLS everywhere; node on core ${NODE_CORE}`);
try {
  for (let r = 1; r <= ROUNDS; r++) {
    for (const mode of MODES) {
      const f = await round(mode);
      results.get(mode.name)!.push(f);
      console.log(
        `round ${r} ${mode.name.padEnd(8)} ${f.kibPerStream.toFixed(1)} KiB RSS/stream, ${f.microsPerDelivery.toFixed(2)} µs node CPU/delivery, ` +
          `published in ${f.publishSeconds.toFixed(2)} s, delivered in ${f.deliverSeconds.toFixed(2)} s, exact ${f.exactStreams}/${STREAMS}, freed in ${f.freeSeconds.toFixed(2)} s ` +
          `(${f.kibRetainedPerStream.toFixed(1)} KiB/stream still held after close, ${f.kibGrowthPerStreamPerCycle.toFixed(2)} KiB/stream more per further cycle of ${CYCLES}), generator ${f.generatorMicrosPerDelivery.toFixed(2)} µs/delivery`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const mean = (xs: Figures[], key: keyof Figures) => xs.reduce((a, f) => a + f[key], 0) / xs.length;
const h1 = results.get("h1") ?? [...results.values()][0]!;
console.log(
  `\n| transport | KiB RSS per open stream | node µs CPU per delivery | memory vs HTTP/1.1 | CPU vs HTTP/1.1 | every event exactly once | RSS growth per further open/close cycle |`,
);
console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
for (const mode of MODES) {
  const xs = results.get(mode.name)!;
  console.log(
    `| ${mode.name} | ${mean(xs, "kibPerStream").toFixed(1)} | ${mean(xs, "microsPerDelivery").toFixed(2)} | ` +
      `${(mean(xs, "kibPerStream") / mean(h1, "kibPerStream")).toFixed(2)}x | ${(mean(xs, "microsPerDelivery") / mean(h1, "microsPerDelivery")).toFixed(2)}x | ` +
      `${xs.every((f) => f.exactStreams === STREAMS) ? "yes" : "NO"} | ${mean(xs, "kibGrowthPerStreamPerCycle").toFixed(2)} KiB/stream |`,
  );
}
process.exit(0);
