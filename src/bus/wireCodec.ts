/**
 * Node-to-node encoding (msgpackr). int64 values come back as numbers, never bigint, because event
 * data is re-serialised with JSON.stringify (which rejects bigint).
 */
import { Packr } from "msgpackr";

const packr = new Packr({ useRecords: false, int64AsType: "number", mapsAsObjects: true });

export const encodeWire = (value: unknown): Uint8Array => packr.pack(value);
export const decodeWire = <T>(bytes: Uint8Array): T => packr.unpack(bytes) as T;
