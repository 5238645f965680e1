/**
 * Process metrics under the standard names every Prometheus client library uses, so stock dashboards
 * and alerts read them as they are: resident memory, CPU time, open and maximum file descriptors, start
 * time. Everything is read when /metrics is scraped; nothing runs between scrapes.
 *
 * Except one step: open descriptors are counted by listing /proc/self/fd, one entry per descriptor, which
 * took 8-15 ms at 10,000 open streams when done inside the scrape (a stall of the event loop every stream
 * felt, four times a second under the bench's scraping). The listing runs off the loop instead, started
 * by a scrape: each scrape answers the last finished count, at most one scrape old.
 *
 * Memory and file descriptors come from /proc/self (the kernel's own figures; the runtime has no call
 * for descriptors). CPU time comes from the runtime's `process.cpuUsage()` (getrusage: the same kernel
 * counters as /proc/self/stat, in microseconds rather than 10 ms ticks). Without /proc (macOS), memory
 * comes from the runtime and the descriptor figures are NaN.
 */
import { readdirSync, readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import type { MetricsRegistry } from "./metrics";

const PROC_SELF = "/proc/self";

const BYTES_PER_KIB = 1024;
const MICROSECONDS_PER_SECOND = 1e6;
const MS_PER_SECOND = 1000;

/** `VmRSS:     28812 kB` in /proc/<pid>/status, in bytes. */
export function residentBytesFromStatus(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB\s*$/m.exec(status);
  if (!m) throw new Error("no VmRSS line in the process status");
  return Number(m[1]) * BYTES_PER_KIB;
}

/** The soft limit of `Max open files` in /proc/<pid>/limits (what the process may open); `unlimited` is +Inf. */
export function maxFdsFromLimits(limits: string): number {
  const m = /^Max open files\s+(\d+|unlimited)\s+(?:\d+|unlimited)\s+files\s*$/m.exec(limits);
  if (!m) throw new Error('no "Max open files" line in the process limits');
  return m[1] === "unlimited" ? Infinity : Number(m[1]);
}

/**
 * Open descriptors, counted from `fdDir`: once at once, then off the event loop, a new listing started by
 * each read while none is running. A read answers the last finished count; `settled` waits for the
 * listing under way (tests). The listing includes the descriptor that reads it, which is not the
 * process's own.
 */
export function backgroundFdCount(fdDir: string): (() => number) & { settled(): Promise<void> } {
  let count = readdirSync(fdDir).length - 1;
  let listing: Promise<void> | undefined;
  const read = (): number => {
    listing ??= readdir(fdDir)
      .then(
        (names) => {
          count = names.length - 1;
        },
        () => {},
      )
      .finally(() => {
        listing = undefined;
      });
    return count;
  };
  return Object.assign(read, { settled: async () => await listing });
}

/** How each figure is read; tests swap them. */
export interface ProcessReaders {
  residentBytes(): number;
  cpuSeconds(): number;
  openFds(): number;
  maxFds(): number;
  startTimeSeconds(): number;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Readers for this process: /proc/self where there is one, the runtime otherwise. */
export function processReaders(proc: string = PROC_SELF): ProcessReaders {
  // Fixed for the process's life: when the runtime's clock started.
  const startTimeSeconds = performance.timeOrigin / MS_PER_SECOND;
  return {
    residentBytes: () => {
      const status = readText(`${proc}/status`);
      return status === undefined ? process.memoryUsage.rss() : residentBytesFromStatus(status);
    },
    cpuSeconds: () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / MICROSECONDS_PER_SECOND;
    },
    openFds: backgroundFdCount(`${proc}/fd`),
    maxFds: () => maxFdsFromLimits(readFileSync(`${proc}/limits`, "utf8")),
    startTimeSeconds: () => startTimeSeconds,
  };
}

/** Registers process_resident_memory_bytes, process_cpu_seconds_total, process_open_fds, process_max_fds, process_start_time_seconds. */
export function registerProcessMetrics(registry: MetricsRegistry, readers: ProcessReaders = processReaders()): void {
  registry.gaugeFn("process_resident_memory_bytes", "Resident memory size in bytes.", readers.residentBytes);
  registry.counterFn("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", readers.cpuSeconds);
  registry.gaugeFn("process_open_fds", "Number of open file descriptors.", readers.openFds);
  registry.gaugeFn("process_max_fds", "Maximum number of open file descriptors.", readers.maxFds);
  registry.gaugeFn("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", readers.startTimeSeconds);
}
