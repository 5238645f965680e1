/** What the results are measured on, and how its cores are split between server and generator. */
import { cpus, release } from "node:os";

export interface Machine {
  nproc: number;
  model: string;
  kernel: string;
}

export function describeMachine(): Machine {
  const list = cpus();
  return { nproc: list.length, model: list[0]?.model.trim() ?? "unknown", kernel: release() };
}

export interface CoreSplit {
  /** taskset CPU lists, or "-" when there is nothing to pin. */
  server: string;
  generator: string;
}

/** First half of the cores for the server under test, the rest for the load generator and publisher. */
export function splitCores(nproc: number, tasksetPresent: boolean): CoreSplit {
  if (!tasksetPresent || nproc < 2) return { server: "-", generator: "-" };
  const serverCount = Math.floor(nproc / 2);
  return { server: range(0, serverCount - 1), generator: range(serverCount, nproc - 1) };
}

function range(first: number, last: number): string {
  return first === last ? String(first) : `${first}-${last}`;
}
