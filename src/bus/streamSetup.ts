/**
 * Setting up the event stream and the buckets when several nodes start at once against a NATS cluster
 * (nats-server 2.9.10, three servers, three nodes starting together), where two things were observed:
 * - a create request was sometimes never answered (a 5 s timeout, in 2 of 3 start-ups) although the
 *   others' succeeded and the stream existed, and the node exited;
 * - a create repeating another node's was answered at once, before the new stream had elected a leader,
 *   so the node's first write failed with "jetstream is not enabled" and the node exited.
 * - two creates of one new stream racing on a single server (nodes started together against a fresh
 *   NATS): both pass the server's "exists already?" check, one adds the stream and the other is refused
 *   with "subjects overlap with an existing stream" (the subjects are its own), and the node exited.
 * So a create that times out or loses that race is tried again (the retry finds the stream), and setting
 * up a stream ends only once it has a leader. A single server reports no cluster and is ready at once.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";

/** Attempts at one creation before the node gives up starting. */
const CREATE_ATTEMPTS = 3;
/** A new stream's first election takes well under a second; this bounds a start-up that cannot elect. */
const LEADER_WAIT_MS = 20_000;
const LEADER_POLL_MS = 100;

/** JetStream's err_code for "subjects overlap with an existing stream" (JSStreamSubjectOverlapErr). */
const SUBJECT_OVERLAP = 10065;

/** A failure that another node's concurrent create explains, so trying again finds the stream. */
function isRaceWithAnotherCreate(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | undefined;
  return e?.name === "TimeoutError" || (e?.name === "JetStreamApiError" && e.code === SUBJECT_OVERLAP);
}

async function createRetryingRaces<T>(create: () => Promise<T>, onRetry: (err: unknown) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create();
    } catch (err) {
      if (!isRaceWithAnotherCreate(err) || attempt >= CREATE_ATTEMPTS) throw err;
      onRetry(err);
    }
  }
}

async function untilLed(jsm: JetStreamManager, stream: string): Promise<void> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  for (;;) {
    const info = await jsm.streams.info(stream).catch(() => undefined);
    if (info && (!info.cluster || info.cluster.leader)) return;
    if (Date.now() > deadline) throw new Error(`stream ${stream} has no leader after ${LEADER_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, LEADER_POLL_MS));
  }
}

/** Creates (or finds) stream `name` through `create`; resolves with what `create` gave once the stream has a leader. */
export async function setUpStream<T>(jsm: JetStreamManager, name: string, create: () => Promise<T>, onRetry: (err: unknown) => void): Promise<T> {
  const made = await createRetryingRaces(create, onRetry);
  await untilLed(jsm, name);
  return made;
}

/**
 * Keeps stream `name`'s messages for `ms` from now on (a shorter max age drops the older ones at once).
 * A stream or bucket that exists is otherwise used as it is: creating it again does not change it.
 */
export async function setMaxAge(jsm: JetStreamManager, name: string, ms: number): Promise<void> {
  const info = await jsm.streams.info(name);
  if (info.config.max_age === nanos(ms)) return;
  await jsm.streams.update(name, { ...info.config, max_age: nanos(ms) });
}
