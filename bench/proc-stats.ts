/**
 * Server resource figures read from Linux /proc: resident memory and CPU time of the peer's
 * processes. Reading /proc costs the server nothing, unlike asking it over HTTP.
 */
import { readdirSync, readFileSync } from "node:fs";

const PAGE_BYTES = 4096;
/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat; 100 on every Linux ABI in use. */
const CLOCK_TICKS_PER_SECOND = 100;
const MICROS_PER_SECOND = 1_000_000;
/** Fields after the command name in /proc/<pid>/stat: state is 0, ppid 1, utime 11, stime 12. */
const STAT_PPID = 1;
const STAT_UTIME = 11;
const STAT_STIME = 12;
/** Field 1 of /proc/<pid>/statm is the resident set, in pages. */
const STATM_RESIDENT = 1;

/** The fields of a process's /proc stat, or of one of its threads' (`tid`); null once it is gone. */
function statFields(pid: number, tid?: number): string[] | null {
  try {
    const text = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: the fields start after its last ')'.
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** Resident memory of the processes, bytes; a process that is gone counts 0. */
export function residentBytes(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const pages = Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[STATM_RESIDENT]);
      total += pages * PAGE_BYTES;
    } catch {
      // exited
    }
  }
  return total;
}

/** CPU time one thread of a process has used so far, µs (the main thread: `tid` = `pid`). */
export function threadCpuMicros(pid: number, tid = pid): { user: number; system: number } {
  const fields = statFields(pid, tid);
  if (fields === null) throw new Error(`thread ${tid} of process ${pid} is gone`);
  const micros = (field: number): number => (Number(fields[field]) * MICROS_PER_SECOND) / CLOCK_TICKS_PER_SECOND;
  return { user: micros(STAT_UTIME), system: micros(STAT_STIME) };
}

/** User + system CPU time the processes have used so far (all their threads), µs. */
export function cpuMicros(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    if (fields !== null) ticks += Number(fields[STAT_UTIME]) + Number(fields[STAT_STIME]);
  }
  return (ticks * MICROS_PER_SECOND) / CLOCK_TICKS_PER_SECOND;
}

/** Direct children of a process (nginx's master → its worker). */
export function childPids(parent: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const fields = statFields(pid);
    if (fields !== null && Number(fields[STAT_PPID]) === parent) children.push(pid);
  }
  return children;
}
