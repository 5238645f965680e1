/**
 * One event to each of many matches in `POST /events` batches, one batch at a time on each keep-alive
 * connection (so as many in flight as connections), in the matches' order: what the matches scenario,
 * bench/rssAfterBurst.ts and bench/nodeJoin.ts send to create matches or give each one more event.
 */
import { KeepAliveConnection } from "./loadgen/keepalive-client.ts";

const HTTP_CREATED = 201;

export interface BatchPostOptions {
  /** Matches per batch. */
  batchItems: number;
  /** One batch's answer must come within this. */
  timeoutMs: number;
  /** The batch's body for these matches, and what to do once it is stored (answered 201). */
  batch(chunk: string[]): { body: string; stored?: () => void };
  /** No batch starts after this (performance.now() ms); `what` names the work in the error. */
  deadline?: { at: number; what: string };
}

/** Resolves once every match's batch is stored; throws on any other answer. */
export async function postInBatches(connections: readonly KeepAliveConnection[], matches: readonly string[], opts: BatchPostOptions): Promise<void> {
  let next = 0;
  const worker = async (connection: KeepAliveConnection): Promise<void> => {
    while (next < matches.length) {
      if (opts.deadline !== undefined && performance.now() > opts.deadline.at) throw new Error(`${opts.deadline.what} went past its deadline`);
      const chunk = matches.slice(next, next + opts.batchItems);
      next += chunk.length;
      const { body, stored } = opts.batch(chunk);
      const answer = await connection.request("POST", "/events", body, opts.timeoutMs);
      if (answer.status !== HTTP_CREATED) throw new Error(`POST /events answered ${answer.status}: ${answer.body.slice(0, 200)}`);
      stored?.();
    }
  };
  await Promise.all(connections.map(worker));
}

/** The same on `inFlight` keep-alive connections of its own to 127.0.0.1:`port`, closed after. */
export async function postInBatchesTo(port: number, inFlight: number, matches: readonly string[], opts: BatchPostOptions): Promise<void> {
  const connections = await Promise.all(Array.from({ length: inFlight }, () => KeepAliveConnection.open("127.0.0.1", port)));
  try {
    await postInBatches(connections, matches, opts);
  } finally {
    for (const c of connections) c.close();
  }
}
