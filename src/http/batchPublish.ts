/**
 * `POST /events`: several events in one request, for feed providers updating many matches at once.
 *
 * Every item is validated (and authorized) before anything is stored: one bad item answers 400 naming
 * its index, and nothing is stored. The items are then stored pipelined, in request order (so in order
 * per match), and the answer lists each item's id in request order once all are stored. If storing
 * stops part-way, the answer is 503 with the results of the items stored before the first that was not
 * confirmed (`stored`): the producer retries the rest with their keys (an item after that point may be
 * stored already, which its key makes harmless).
 */
import { MATCH_ID, type PublishInput, validatePublishInput } from "../match/event.ts";
import { HttpError } from "./errors.ts";

export interface BatchItem {
  match: string;
  input: PublishInput;
}

/** Validates a parsed batch body: an array of 1..maxItems publish bodies, each naming its match. */
export function validateBatch(body: unknown, maxItems: number): BatchItem[] {
  if (!Array.isArray(body)) {
    throw new HttpError(400, "invalid_event", 'the body must be a JSON array like [{"match":"m1","type":"goal","data":{}}]');
  }
  if (body.length === 0) throw new HttpError(400, "invalid_event", "the batch is empty");
  if (body.length > maxItems) throw new HttpError(413, "too_large", `a batch holds at most ${maxItems} items`);
  return body.map((item, index) => {
    const match = (item as { match?: unknown } | null)?.match;
    if (typeof match !== "string" || !MATCH_ID.test(match)) {
      throw new HttpError(400, "invalid_event", `item ${index}: match must match ^[A-Za-z0-9_-]{1,64}$`, {}, { index });
    }
    const input = validatePublishInput(item);
    if (!input.ok) throw new HttpError(400, "invalid_event", `item ${index}: ${input.message}`, {}, { index });
    return { match, input: input.value };
  });
}

export type BatchResult = { id: string } | { id: string; duplicate: true };
