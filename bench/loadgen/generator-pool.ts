/**
 * The orchestrator's handle on its load-generator processes. One process may hold at most the
 * open-file hard limit (20,000 here), so streams are spread over as many processes as needed;
 * their replies are merged into one figure per scenario.
 */
import type { Subprocess } from "bun";
import { type HistogramSnapshot, LatencyHistogram } from "./latency-histogram.ts";
import type { CloseReply, Command, DeliveryStats, OpenReply, Reply, ReplyBody, StormReply, StreamGroup } from "./protocol.ts";

const GENERATOR_ENTRY = new URL("./main.ts", import.meta.url).pathname;
const LAUNCHER = new URL("../launch.sh", import.meta.url).pathname;
const BUN = new URL("../../node_modules/.bin/bun", import.meta.url).pathname;
const EXIT_GRACE_MS = 2_000;
/** A generator answers within its command's own timeout; past this much more it is taken as hung. */
const REPLY_GRACE_MS = 30_000;

export interface PoolTarget {
  hosts: string[];
  ports: number[];
  pathTemplate: string;
  resume: boolean;
}

export interface MergedStats extends Omit<DeliveryStats, "latency"> {
  latency: LatencyHistogram;
}

type AnyCommand = Command extends infer C ? (C extends { id: number } ? Omit<C, "id"> : never) : never;

class GeneratorProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(body: ReplyBody): void; reject(error: Error): void }>();
  private readonly process: Subprocess<"pipe", "pipe", "inherit">;

  constructor(cpus: string) {
    this.process = Bun.spawn([LAUNCHER, cpus, BUN, "run", GENERATOR_ENTRY], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    void this.readReplies();
  }

  get pid(): number {
    return this.process.pid;
  }

  request<T extends ReplyBody>(command: AnyCommand): Promise<T> {
    const id = this.nextId++;
    const deadlineMs = ("timeoutMs" in command ? command.timeoutMs : 0) + REPLY_GRACE_MS;
    const promise = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`generator ${this.pid} did not answer "${command.cmd}" within ${deadlineMs} ms`));
      }, deadlineMs);
      this.pending.set(id, {
        resolve: (body) => {
          clearTimeout(timer);
          resolve(body as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
    this.process.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
    this.process.stdin.flush();
    return promise;
  }

  async exit(): Promise<void> {
    this.process.stdin.end();
    const timer = setTimeout(() => this.process.kill("SIGKILL"), EXIT_GRACE_MS);
    await this.process.exited;
    clearTimeout(timer);
  }

  private async readReplies(): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of this.process.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline = buffered.indexOf("\n");
      while (newline !== -1) {
        this.settle(JSON.parse(buffered.slice(0, newline)) as Reply);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf("\n");
      }
    }
    for (const waiter of this.pending.values()) waiter.reject(new Error(`generator ${this.pid} exited`));
    this.pending.clear();
  }

  private settle(reply: Reply): void {
    const waiter = this.pending.get(reply.id);
    if (waiter === undefined) return;
    this.pending.delete(reply.id);
    if (reply.ok) waiter.resolve(reply.body);
    else waiter.reject(new Error(`generator ${this.pid}: ${reply.error}`));
  }
}

export class GeneratorPool {
  private processes: GeneratorProcess[] = [];
  private readonly cpus: string;
  private readonly maxStreamsPerProcess: number;

  /**
   * `cpus`: a taskset CPU list for the generators, or "-" for no pinning.
   * `maxStreamsPerProcess`: below the open files one process may hold.
   */
  constructor(cpus: string, maxStreamsPerProcess: number) {
    this.cpus = cpus;
    this.maxStreamsPerProcess = maxStreamsPerProcess;
  }

  get pids(): number[] {
    return this.processes.map((p) => p.pid);
  }

  /** Opens the streams of `groups`, spread over enough generator processes; channels stay whole when they fit. */
  async open(target: PoolTarget, groups: StreamGroup[], timeoutMs: number): Promise<OpenReply> {
    const total = groups.reduce((sum, g) => sum + g.count, 0);
    const needed = Math.max(1, Math.ceil(total / this.maxStreamsPerProcess));
    while (this.processes.length < needed) this.processes.push(new GeneratorProcess(this.cpus));
    const shares = splitGroups(groups, this.processes.length);
    const replies = await Promise.all(this.processes.map((p, i) => p.request<OpenReply>({ cmd: "open", ...target, groups: shares[i] ?? [], timeoutMs })));
    return {
      live: sum(replies, (r) => r.live),
      failed: sum(replies, (r) => r.failed),
      refused: sum(replies, (r) => r.refused),
      refusedInStream: sum(replies, (r) => r.refusedInStream),
      ms: Math.max(...replies.map((r) => r.ms)),
      firstByte: mergeSnapshots(replies.map((r) => r.firstByte)),
    };
  }

  async reset(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.request({ cmd: "reset" })));
  }

  async awaitFinals(finals: Record<string, number>, timeoutMs: number): Promise<MergedStats> {
    const replies = await Promise.all(this.processes.map((p) => p.request<DeliveryStats>({ cmd: "await", finals, timeoutMs })));
    const merged = noStats();
    for (const reply of replies) addStats(merged, reply);
    return merged;
  }

  async storm(timeoutMs: number): Promise<StormReply> {
    const replies = await Promise.all(this.processes.map((p) => p.request<StormReply>({ cmd: "storm", timeoutMs })));
    return {
      live: sum(replies, (r) => r.live),
      failed: sum(replies, (r) => r.failed),
      ms: Math.max(...replies.map((r) => r.ms)),
    };
  }

  /** Closes every stream and ends the generator processes. */
  async close(timeoutMs: number): Promise<number> {
    const replies = await Promise.all(this.processes.map((p) => p.request<CloseReply>({ cmd: "close", timeoutMs }).catch(() => ({ closed: 0 }))));
    await Promise.all(this.processes.map((p) => p.exit()));
    this.processes = [];
    return sum(replies, (r) => r.closed);
  }
}

/** Deals whole groups to the least-loaded process, splitting a group only when it is larger than a process's share. */
function splitGroups(groups: StreamGroup[], processes: number): StreamGroup[][] {
  const shares: StreamGroup[][] = Array.from({ length: processes }, () => []);
  const loads = new Array<number>(processes).fill(0);
  const total = groups.reduce((s, g) => s + g.count, 0);
  const perProcess = Math.ceil(total / processes);
  for (const group of groups) {
    let remaining = group.count;
    while (remaining > 0) {
      const index = loads.indexOf(Math.min(...loads));
      const take = Math.min(remaining, Math.max(1, perProcess - (loads[index] as number)));
      shares[index]!.push({ ...group, count: take });
      loads[index] = (loads[index] as number) + take;
      remaining -= take;
    }
  }
  return shares;
}

/** Stats of nothing delivered yet, to add others to (addStats). */
export function noStats(): MergedStats {
  return {
    deliveries: 0,
    latency: new LatencyHistogram(),
    lost: 0,
    duplicates: 0,
    reordered: 0,
    foreign: 0,
    drops: 0,
    behind: 0,
    cpuUs: 0,
    firstDeliveryAt: 0,
    lastDeliveryAt: 0,
  };
}

/** Adds `part` (one generator's reply, or a merged figure's snapshot) into `total`: counts add up, latencies merge. */
export function addStats(total: MergedStats, part: DeliveryStats): void {
  total.deliveries += part.deliveries;
  total.latency.merge(part.latency);
  total.lost += part.lost;
  total.duplicates += part.duplicates;
  total.reordered += part.reordered;
  total.foreign += part.foreign;
  total.drops += part.drops;
  total.behind += part.behind;
  total.cpuUs += part.cpuUs;
  // 0 means nothing delivered (see DeliveryStats).
  if (part.deliveries > 0 && (total.firstDeliveryAt === 0 || part.firstDeliveryAt < total.firstDeliveryAt)) total.firstDeliveryAt = part.firstDeliveryAt;
  total.lastDeliveryAt = Math.max(total.lastDeliveryAt, part.lastDeliveryAt);
}

function sum<T>(items: T[], pick: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += pick(item);
  return total;
}

function mergeSnapshots(snapshots: HistogramSnapshot[]): HistogramSnapshot {
  const merged = new LatencyHistogram();
  for (const snapshot of snapshots) merged.merge(snapshot);
  return merged.snapshot();
}
