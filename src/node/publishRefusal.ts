/**
 * What a failed publish tells its producer. JetStream answering with an error (its storage full, a
 * limit of the stream, no stream listening) means the event was not stored: the producer may send it
 * again, key or no key. Anything else (no answer in time, a connection cut, an answer that arrived
 * across a store change) leaves the outcome unknown: the event may be stored all the same, and only a
 * retry with the same key is safe.
 */
import { JetStreamRejected } from "../bus/jetStreamPublisher.ts";

/** JetStream's reason when it refused to store the event, undefined when the outcome is unknown. */
export function refusedByLog(err: unknown): string | undefined {
  return err instanceof JetStreamRejected && err.notStored ? err.description : undefined;
}
