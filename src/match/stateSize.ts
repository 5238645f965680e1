/**
 * A match's state is bounded in bytes (MAX_STATE_BYTES): every node holds it, every new client's
 * snapshot carries it, and its index entry must fit in one NATS message. A producer adding a key per
 * event grew one match's state to megabytes (each snapshot that size, its index entry too large to
 * write) with nothing to stop it.
 *
 * Measuring the state's JSON for every event would cost a serialization per event, so what is kept is an
 * upper bound: applying a merge patch adds at most the patch's own serialized bytes (every character of
 * the result comes from the state or from the patch). Only when the bound passes the limit is the
 * patched state measured, and the bound starts again from that exact figure.
 */
import { applyStatePatch, type Json } from "./mergePatch.ts";

/** UTF-8 bytes of a JSON value's serialization. */
export function jsonBytes(value: Json): number {
  return Buffer.byteLength(JSON.stringify(value));
}

export interface BoundedState {
  state: Record<string, Json>;
  /** At least the state's JSON bytes; undefined when not known (measured when needed). */
  bytesAtMost: number | undefined;
}

/**
 * The state with `patch` applied, and its bound; undefined when the patched state would be larger than
 * `maxBytes` and than it is now (the state stays as it was). A state already past the limit (the limit
 * lowered, or an older node's) may still shrink by steps. No patch: the state as it is.
 */
export function patchWithin(current: BoundedState, patch: Json | undefined, maxBytes: number): BoundedState | undefined {
  if (patch === undefined) return current;
  const patched = applyStatePatch(current.state, patch);
  const bound = boundAfter(current, patch);
  if (bound <= maxBytes) return { state: patched, bytesAtMost: bound };
  const exact = jsonBytes(patched);
  if (exact <= maxBytes || exact <= jsonBytes(current.state)) return { state: patched, bytesAtMost: exact };
  return undefined;
}

/** At least the bytes of the state with `patch` applied, without applying it. */
function boundAfter(current: BoundedState, patch: Json): number {
  return (current.bytesAtMost ?? jsonBytes(current.state)) + jsonBytes(patch);
}
