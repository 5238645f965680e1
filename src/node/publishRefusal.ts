/**
 * What a failed publish tells its producer. JetStream answering with an error (its storage full, a
 * limit of the stream, no stream listening) means the event was not stored: the producer may send it
 * again, key or no key. Anything else (no answer in time, a connection cut, an answer that arrived
 * across a store change) leaves the outcome unknown: the event may be stored all the same, and only a
 * retry with the same key is safe. An event larger than the NATS server takes is not stored either, and
 * sending it again cannot help: the producer must send a smaller one.
 */
import { JetStreamRejected, MessageTooLarge } from "../bus/jetStreamPublisher.ts";

/** JetStream's reason when it refused to store the event, undefined when the outcome is unknown. */
export function refusedByLog(err: unknown): string | undefined {
  return err instanceof JetStreamRejected && err.notStored ? err.description : undefined;
}

/**
 * The event was larger than the NATS server takes (its max_payload): not stored, and only a smaller
 * event can be. `index` names a batch's item; `bytes` is unknown when the client refused it at send time.
 */
export function tooLargeForLog(err: unknown): { maxBytes: number; bytes?: number; index?: number } | undefined {
  if (!(err instanceof MessageTooLarge)) return undefined;
  return {
    maxBytes: err.maxBytes,
    ...(err.bytes === undefined ? {} : { bytes: err.bytes }),
    ...(err.index === undefined ? {} : { index: err.index }),
  };
}
