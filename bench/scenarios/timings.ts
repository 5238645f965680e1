/**
 * Tools the issue-12 scenarios share: request timings with sub-millisecond resolution (publish
 * acknowledgements are often under a millisecond, too fine for the delivery histogram's whole ms),
 * CPU meters per process group, and a sampler that watches a node while a scenario runs.
 */
import { readFileSync } from "node:fs";
import { cpuMicros } from "../proc-stats.ts";

/** USER_HZ, the unit of /proc/stat. */
const CLOCK_TICKS_PER_SECOND = 100;
const MICROS_PER_SECOND = 1_000_000;
const PROBE_TIMEOUT_MS = 5_000;

export interface TimingSummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Durations in ms, fractions kept (a run records at most a few hundred thousand). */
export class Timings {
  private values: number[] = [];

  record(ms: number): void {
    this.values.push(ms);
  }

  get count(): number {
    return this.values.length;
  }

  summary(): TimingSummary {
    const sorted = Float64Array.from(this.values).sort();
    const at = (fraction: number): number =>
      sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] as number);
    return {
      count: sorted.length,
      p50Ms: at(0.5),
      p95Ms: at(0.95),
      p99Ms: at(0.99),
      maxMs: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number),
    };
  }
}

/** CPU (user + system, all threads) a group of processes used since the meter was made, µs. */
export function cpuMeter(pids: () => number[]): () => number {
  const start = cpuMicros(pids());
  return () => cpuMicros(pids()) - start;
}

/** This process's own CPU since the meter was made, µs (the publisher's cost, reported beside the server's). */
export function ownCpuMeter(): () => number {
  const start = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(start);
    return used.user + used.system;
  };
}

/**
 * CPU every process on the machine used since the meter was made, µs (/proc/stat: all time but idle
 * and iowait). Less the processes measured, it is what others ran meanwhile: this machine is shared,
 * and a figure taken while something else was busy says so beside it.
 */
export function machineCpuMeter(): () => number {
  const busy = (): number => {
    const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq (guest time is already in user; steal is the hypervisor's)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = fields;
    return ((user + nice + system + irq + softirq) * MICROS_PER_SECOND) / CLOCK_TICKS_PER_SECOND;
  };
  const start = busy();
  return () => busy() - start;
}

/** Polls `done` until it holds or the timeout passes; false on timeout. */
export async function pollUntil(done: () => Promise<boolean>, timeoutMs: number, intervalMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await done().catch(() => false)) return true;
    await Bun.sleep(intervalMs);
  }
  return false;
}

/** Messages a nats-server has taken in and sent out so far, all clients together (its monitoring port's /varz). */
export async function natsMessages(monitorUrl: string): Promise<{ in: number; out: number }> {
  const response = await fetch(`${monitorUrl}/varz`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const varz = (await response.json()) as { in_msgs?: number; out_msgs?: number };
  return { in: varz.in_msgs ?? Number.NaN, out: varz.out_msgs ?? Number.NaN };
}
