import { describe, expect, test } from "bun:test";
import { parseDeliveryReply } from "./deliveryReply.ts";

describe("parseDeliveryReply", () => {
  test("reads nats-server 2.9's ack subject: delivered count, stream seq, delivery seq, timestamp, pending", () => {
    const r = parseDeliveryReply("$JS.ACK.KV_touchline_members.reader_WkeT7cUG6A3TMi9l6rmxxA_1.1.3.2.1796489513475755981.7");
    expect(r).toEqual({ deliveredCount: 1, streamSeq: 3, deliverySeq: 2, timestampNanos: Number("1796489513475755981"), pending: 7 });
    // Past 2^53, still right to the millisecond.
    expect(Math.floor(r!.timestampNanos / 1e6)).toBe(1796489513475);
  });

  test("reads the later form, with domain and account hash, and a token after pending", () => {
    expect(parseDeliveryReply("$JS.ACK.hub.ACCHASH.touchline_events.c1.1.42.40.1700000000000000000.0.xyz")).toEqual({
      deliveredCount: 1,
      streamSeq: 42,
      deliverySeq: 40,
      timestampNanos: 1700000000000000000,
      pending: 0,
    });
    expect(parseDeliveryReply("$JS.ACK.hub.ACCHASH.touchline_events.c1.1.42.40.1700000000000000000.0")?.streamSeq).toBe(42);
  });

  test("anything else is not a delivery", () => {
    for (const reply of [
      undefined,
      "",
      "_INBOX.abc",
      "$JS.ACK.s.c.1.2.3",
      "$JS.ACK.s.c.1.x.3.4.5",
      "$JS.ACK.s.c.1.2.3.4.5.6.7.8.9.10.11.12.13",
      "$JS.API.CONSUMER.INFO.s.c.1.2.3",
    ]) {
      expect(parseDeliveryReply(reply)).toBeUndefined();
    }
  });
});
