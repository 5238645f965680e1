/**
 * BucketWatch: the latest value of every key of a KV bucket, then every change, read through an
 * OrderedReader so the watch survives losing the NATS server its consumer lived on (kv.watch() of
 * @nats-io/kv does not: see orderedReader.ts). Entries carry the fields of @nats-io/kv's entries that
 * Touchline reads.
 */
import { type OrderedReader, type ReaderContext, readOrdered } from "./orderedReader.ts";

/** The header in which a KV bucket marks deletes and purges (a plain message is a put). */
const KV_OPERATION_HEADER = "KV-Operation";
const utf8 = new TextDecoder();

export interface BucketEntry {
  key: string;
  operation: "PUT" | "DEL" | "PURGE";
  /** The stream sequence of this value: a key's revision. */
  revision: number;
  created: Date;
  value: Uint8Array;
  /** False while the values stored before the watch began are being replayed. */
  isUpdate: boolean;
  string(): string;
  json<T>(): T;
}

/** Starts watching; resolves once the watch runs. */
export type BucketWatch = (onEntry: (e: BucketEntry) => void) => Promise<OrderedReader>;

export function bucketWatch(readers: ReaderContext, bucket: string): BucketWatch {
  const prefix = `$KV.${bucket}.`;
  return (onEntry) => {
    let caughtUp = false;
    return readOrdered(readers, { stream: `KV_${bucket}`, filter: `${prefix}>`, start: "last_per_subject" }, (m) => {
      const op = m.headers?.get(KV_OPERATION_HEADER);
      const value = m.data;
      onEntry({
        key: m.subject.slice(prefix.length),
        operation: op === "DEL" || op === "PURGE" ? op : "PUT",
        revision: m.seq,
        created: new Date(m.timestampNanos / 1e6),
        value,
        isUpdate: caughtUp,
        string: () => utf8.decode(value),
        json: <T>() => JSON.parse(utf8.decode(value)) as T,
      });
      if (m.pending === 0) caughtUp = true;
    });
  };
}
