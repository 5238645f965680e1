import { expect, test } from "bun:test";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { JetStreamPublisher, JetStreamRejected, MessageTooLarge, msgIdHeaderBytes } from "./jetStreamPublisher.ts";

/** A connection whose publish throws `thrown` (as nats.js does when it refuses to send). */
function refusingConnection(thrown: Error, maxPayload: number): NatsConnection {
  return {
    info: { max_payload: maxPayload },
    subscribe: () => ({ unsubscribe() {} }),
    publish: () => {
      throw thrown;
    },
  } as unknown as NatsConnection;
}

function named(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}

test("msgIdHeaderBytes counts the header block as nats.js encodes it", () => {
  for (const id of ["m1:k", "match-with-a-long-name:key-é-ü-😀"]) {
    const h = headers();
    h.set("Nats-Msg-Id", id);
    expect(msgIdHeaderBytes(id)).toBe((h as unknown as { encode(): Uint8Array }).encode().byteLength);
  }
});

test("oversize: undefined while the message fits, its bytes (body and msg id header) past max_payload", () => {
  const publisher = new JetStreamPublisher(refusingConnection(new Error("unused"), 100), 1000);
  expect(publisher.maxPayload).toBe(100);
  expect(publisher.oversize("x".repeat(100))).toBeUndefined();
  expect(publisher.oversize("x".repeat(101))).toBe(101);
  // Counted in UTF-8 bytes, not characters.
  expect(publisher.oversize("é".repeat(50))).toBeUndefined();
  expect(publisher.oversize("é".repeat(51))).toBe(102);
  expect(publisher.oversize("x".repeat(69), "m1:k")).toBeUndefined();
  expect(publisher.oversize("x".repeat(70), "m1:k")).toBe(70 + msgIdHeaderBytes("m1:k"));
  publisher.close();
});

test("a publish the client refuses to send is known not stored: past max_payload, or on a closed connection", async () => {
  const tooLarge = new JetStreamPublisher(refusingConnection(named("InvalidArgumentError", "'payload' max_payload size exceeded"), 1024), 1000);
  const refused = await tooLarge.publish("s", "x").catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(MessageTooLarge);
  expect((refused as MessageTooLarge).maxBytes).toBe(1024);
  tooLarge.close();

  const closed = new JetStreamPublisher(refusingConnection(named("ClosedConnectionError", "closed connection"), 1024), 1000);
  const failed = await closed.publish("s", "x").catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(JetStreamRejected);
  expect((failed as JetStreamRejected).notStored).toBe(true);
  expect((failed as JetStreamRejected).description).toBe("not sent: closed connection");
  closed.close();
});
