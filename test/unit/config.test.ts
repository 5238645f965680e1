/** Config defaults that depend on the environment around the node, checked without starting one. */
import { expect, test } from "bun:test";
import { hostname } from "node:os";
import { ConfigError, loadConfig } from "../../src/config/config.ts";

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
