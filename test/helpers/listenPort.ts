/**
 * Ports for servers the tests and the bench start. A port the kernel hands out for `bind(0)` comes from
 * the ephemeral range, the range outgoing connections take their local ports from: between asking and
 * the server binding it, one of the thousands of client connections a test or the bench opens can take
 * it, and the server dies with EADDRINUSE. So ports are drawn below that range, checked free by binding,
 * and never handed out twice by one process. Under `bun test --parallel` every worker process draws from
 * its own residue class (port ≡ BUN_TEST_WORKER_ID mod WORKER_STRIPES), so two workers never hand out the
 * same port; a process outside a parallel run (a plain `bun test`, the bench) draws from class 0.
 */
import { readFileSync } from "node:fs";

const LOWEST_PORT = 10_000;
/** Linux's default when the range cannot be read. */
const DEFAULT_EPHEMERAL_LOW = 32_768;
const ATTEMPTS = 500;
/** More than the workers this suite is ever run with (scripts/test.sh: two, one per core). */
const WORKER_STRIPES = 16;
const stripe = Number(process.env.BUN_TEST_WORKER_ID ?? 0) % WORKER_STRIPES;

const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > LOWEST_PORT) return low;
  } catch {
    // not Linux: the default range
  }
  return DEFAULT_EPHEMERAL_LOW;
}

/** A port nobody listens on now, below the ephemeral range, not handed out before by this process. */
export function freeListenPort(): number {
  const slots = Math.floor((ephemeralLow() - LOWEST_PORT) / WORKER_STRIPES);
  for (let i = 0; i < ATTEMPTS; i++) {
    const port = LOWEST_PORT + stripe + WORKER_STRIPES * Math.floor(Math.random() * slots);
    if (handedOut.has(port)) continue;
    try {
      Bun.listen({ hostname: "0.0.0.0", port, socket: { data() {} } }).stop(true);
    } catch {
      continue; // taken
    }
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port found between ${LOWEST_PORT} and the ephemeral range`);
}
