/**
 * What PROXY_PROTOCOL costs: node CPU per delivery and RSS per open stream with the front
 * (src/proxy/proxyFront.ts) splicing every stream, against the same node without it, in one run, alternating. 2,000 raw-socket streams on
 * one match, 300 events published one after another; each round starts its own NATS and node.
 *
 *   ulimit -n $(ulimit -Hn); node_modules/.bin/bun bench/proxyFront.ts
 */
import type { Socket } from "bun";
import { cpuMicros, residentBytes } from "./proc-stats.ts";
import { startNats, startNode } from "../test/helpers/cluster.ts";
import { publishOk, uniqueMatch } from "../test/integration/touchlineApi.ts";

const STREAMS = 2000;
const EVENTS = 300;
const ROUNDS = 2;
const SETTLE_MS = 2000;
/** Long enough for the last event to reach every stream. */
const DRAIN_MS = 1500;

interface RoundFigures {
  microsPerDelivery: number;
  kibPerStream: number;
  bytes: number;
}

async function round(proxied: boolean): Promise<RoundFigures> {
  const nats = await startNats();
  const node = await startNode({ natsUrl: nats.url, env: proxied ? { PROXY_PROTOCOL: "true", TRUST_PROXY: "loopback" } : {} });
  try {
    const match = uniqueMatch("front");
    await publishOk(node.url, match, { type: "kickoff" });
    await Bun.sleep(SETTLE_MS);
    const rssBefore = residentBytes([node.proc.pid]);
    let bytes = 0;
    const sockets: Socket<undefined>[] = [];
    for (let i = 0; i < STREAMS; i++) {
      const s = await Bun.connect({ hostname: "127.0.0.1", port: node.port, socket: { data: (_s, b) => void (bytes += b.byteLength) } });
      // Each stream a client of its own, as behind a balancer (the per-address cap allows 100 each).
      if (proxied) s.write(`PROXY TCP4 198.51.${(i >> 8) & 255}.${i & 255} 127.0.0.1 40000 80\r\n`);
      s.write(`GET /matches/${match}/events HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\n\r\n`);
      sockets.push(s);
    }
    await Bun.sleep(SETTLE_MS);
    const kibPerStream = (residentBytes([node.proc.pid]) - rssBefore) / STREAMS / 1024;
    const cpuBefore = cpuMicros([node.proc.pid]);
    const bytesBefore = bytes;
    for (let i = 0; i < EVENTS; i++) await publishOk(node.url, match, { type: "tick", data: { i, text: "a goal-line clearance" } });
    await Bun.sleep(DRAIN_MS);
    const micros = cpuMicros([node.proc.pid]) - cpuBefore;
    for (const s of sockets) s.end();
    return { microsPerDelivery: micros / (STREAMS * EVENTS), kibPerStream, bytes: bytes - bytesBefore };
  } finally {
    await node.kill();
    await nats.stop();
  }
}

const direct: RoundFigures[] = [];
const front: RoundFigures[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const proxied of [false, true]) {
    const f = await round(proxied);
    (proxied ? front : direct).push(f);
    console.log(
      `round ${r + 1} ${proxied ? "PROXY front" : "direct     "}: ${f.microsPerDelivery.toFixed(2)} µs node CPU per delivery, ` +
        `${f.kibPerStream.toFixed(1)} KiB RSS per open stream (${(f.bytes / 1e6).toFixed(1)} MB delivered)`,
    );
  }
}
const mean = (xs: RoundFigures[], key: "microsPerDelivery" | "kibPerStream") => xs.reduce((a, f) => a + f[key], 0) / xs.length;
console.log(
  `PROXY front / direct (${STREAMS} streams x ${EVENTS} events, ${ROUNDS} rounds each): ` +
    `${(mean(front, "microsPerDelivery") / mean(direct, "microsPerDelivery")).toFixed(2)}x node CPU per delivery, ` +
    `${(mean(front, "kibPerStream") / mean(direct, "kibPerStream")).toFixed(2)}x RSS per open stream`,
);
