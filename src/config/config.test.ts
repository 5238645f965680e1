/** Config defaults that depend on the environment around the node, checked without starting one. */
import { expect, test } from "bun:test";
import { hostname } from "node:os";
import { ConfigError, loadConfig } from "./config.ts";

test("ADVERTISED_HOST: explicit, else a single listening address, else the machine's host name", () => {
  expect(loadConfig({ ADVERTISED_HOST: "node-7.example" }).advertisedHost).toBe("node-7.example");
  expect(loadConfig({ HOST: "10.1.2.3" }).advertisedHost).toBe("10.1.2.3");
  // Listening everywhere (compose): the container's host name is what Docker's DNS answers for.
  expect(loadConfig({}).advertisedHost).toBe(hostname());
  expect(loadConfig({ HOST: "::" }).advertisedHost).toBe(hostname());
});

test("ADVERTISED_HOST that could not be a host is refused, naming the variable", () => {
  expect(() => loadConfig({ ADVERTISED_HOST: "http://x/" })).toThrow(ConfigError);
  expect(() => loadConfig({ ADVERTISED_HOST: "a b" })).toThrow(/ADVERTISED_HOST/);
});

test("GC_AFTER_STREAM_CHURN: 1000 by default, 0 turns it off, anything else but a whole number is refused", () => {
  expect(loadConfig({}).collectAfterStreamChurn).toBe(1000);
  expect(loadConfig({ GC_AFTER_STREAM_CHURN: "0" }).collectAfterStreamChurn).toBe(0);
  expect(() => loadConfig({ GC_AFTER_STREAM_CHURN: "-1" })).toThrow(/GC_AFTER_STREAM_CHURN/);
  expect(() => loadConfig({ GC_AFTER_STREAM_CHURN: "lots" })).toThrow(/GC_AFTER_STREAM_CHURN/);
});

test("SLOW_CLIENT_GRACE: a duration, 3s by default; the ceiling is 4x CLIENT_BUFFER_BYTES, and at least the buffer and one largest event", () => {
  const d = loadConfig({});
  expect(d.slowClientGraceMs).toBe(3000);
  expect(d.clientBufferCeilingBytes).toBeGreaterThan(d.clientBufferBytes);
  expect(loadConfig({ SLOW_CLIENT_GRACE: "500ms" }).slowClientGraceMs).toBe(500);
  expect(loadConfig({ SLOW_CLIENT_GRACE: "0" }).slowClientGraceMs).toBe(0);
  const small = loadConfig({ CLIENT_BUFFER_BYTES: "262144" });
  expect(small.clientBufferCeilingBytes).toBe(4 * 262_144);
  // A buffer under a quarter of the largest body: the ceiling still holds the buffer and one largest event.
  const tiny = loadConfig({ CLIENT_BUFFER_BYTES: "4096" });
  expect(tiny.clientBufferCeilingBytes).toBe(4096 + tiny.maxBodyBytes + 65_536);
  expect(loadConfig({ CLIENT_BUFFER_BYTES: "4096", MAX_BODY_BYTES: "1000000" }).clientBufferCeilingBytes).toBe(4096 + 1_000_000 + 65_536);
  expect(() => loadConfig({ SLOW_CLIENT_GRACE: "soon" })).toThrow(/SLOW_CLIENT_GRACE/);
});

test("WINDOW_BYTES and WINDOW_BUDGET_BYTES: 1 MiB and 256 MiB by default; the budget holds at least one window", () => {
  const d = loadConfig({});
  expect(d.windowBytes).toBe(1_048_576);
  expect(d.windowBudgetBytes).toBe(256 * 1_048_576);
  expect(loadConfig({ WINDOW_BYTES: "4096", WINDOW_BUDGET_BYTES: "8192" })).toMatchObject({ windowBytes: 4096, windowBudgetBytes: 8192 });
  // A window larger than the default budget raises the budget's default with it.
  expect(loadConfig({ WINDOW_BYTES: String(512 * 1_048_576) }).windowBudgetBytes).toBe(512 * 1_048_576);
  expect(() => loadConfig({ WINDOW_BYTES: "4096", WINDOW_BUDGET_BYTES: "4095" })).toThrow(/WINDOW_BUDGET_BYTES/);
  expect(() => loadConfig({ WINDOW_BYTES: "12" })).toThrow(/WINDOW_BYTES/);
  expect(() => loadConfig({ WINDOW_BYTES: "1MB" })).toThrow(/WINDOW_BYTES/);
});
