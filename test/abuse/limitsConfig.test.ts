/** The abuse limits' settings: defaults, accepted forms, and a bad value naming its variable. */
import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config/config.ts";
import { LIMIT_DEFAULTS } from "../../src/limits/limitsConfig.ts";
import { parseIp } from "../../src/limits/ipAddress.ts";

const limitsOf = (env: Record<string, string>) => loadConfig({ MAX_CONNECTIONS: "1000", ...env }).limits;
const ip = (text: string) => parseIp(text)!;

describe("abuse limit settings", () => {
  test("defaults", () => {
    const l = limitsOf({});
    expect(l.maxStreamsPerAddress).toBe(LIMIT_DEFAULTS.maxStreamsPerAddress);
    expect(l.streamRatePerAddress).toBe(10);
    expect(l.streamBurstPerAddress).toBe(50);
    expect(l.publishRate).toBe(100);
    expect(l.publishBurst).toBe(200);
    expect(l.maxHeaderBytes).toBe(8192);
    expect(l.maxTrackedKeys).toBe(100_000);
    expect(l.trustProxy).toEqual({ kind: "none" });
    expect(l.proxyProtocol).toBe(false);
    // This host and private ranges are exempt (a load balancer's address); public addresses are not.
    for (const exempt of ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.9", "fd00::1"]) expect(l.exempt.has(ip(exempt))).toBe(true);
    for (const limited of ["203.0.113.7", "2001:db8::1"]) expect(l.exempt.has(ip(limited))).toBe(false);
  });

  test("0 turns a limit off; a burst follows a higher rate unless set", () => {
    const l = limitsOf({ MAX_STREAMS_PER_ADDRESS: "0", STREAM_RATE_PER_ADDRESS: "0", PUBLISH_RATE: "500", LIMITS_EXEMPT: "none", TRUST_PROXY: "10.0.0.0/8" });
    expect(l.maxStreamsPerAddress).toBe(0);
    expect(l.streamRatePerAddress).toBe(0);
    expect(l.publishBurst).toBe(500);
    expect(l.exempt.isEmpty).toBe(true);
    expect(l.trustProxy.kind).toBe("addresses");
  });

  test("PROXY_PROTOCOL: off by default; on with the balancers TRUST_PROXY names", () => {
    expect(limitsOf({ PROXY_PROTOCOL: "false", TRUST_PROXY: "private" }).proxyProtocol).toBe(false);
    for (const on of ["true", "1", "on", "YES"]) expect(limitsOf({ PROXY_PROTOCOL: on, TRUST_PROXY: "private" }).proxyProtocol).toBe(true);
    expect(() => limitsOf({ PROXY_PROTOCOL: "true", TRUST_PROXY: "false" })).toThrow(/^invalid PROXY_PROTOCOL: needs TRUST_PROXY/);
  });

  test("a bad value stops the node naming the variable", () => {
    const cases: [string, string][] = [
      ["MAX_STREAMS_PER_ADDRESS", "-1"],
      ["STREAM_RATE_PER_ADDRESS", "1.5"],
      ["STREAM_BURST_PER_ADDRESS", "0"],
      ["PUBLISH_RATE", "lots"],
      ["PUBLISH_BURST", "0"],
      ["MAX_HEADER_BYTES", "100"],
      ["MAX_HEADER_BYTES", "99999999"],
      ["TRUST_PROXY", "maybe"],
      ["TRUST_PROXY", "10.0.0.0/40"],
      ["TRUST_PROXY", "64"],
      ["LIMITS_EXEMPT", "10.0.0.0/8,nope"],
      ["LIMITER_MAX_KEYS", "5"],
      ["PROXY_PROTOCOL", "maybe"],
      // Without a trusted balancer nobody may send the header: on its own it is a mistake, not a no-op.
      ["PROXY_PROTOCOL", "true"],
    ];
    for (const [name, value] of cases) {
      let err: unknown;
      try {
        limitsOf({ [name]: value });
      } catch (e) {
        err = e;
      }
      expect({ name, value, isConfigError: err instanceof ConfigError }).toEqual({ name, value, isConfigError: true });
      expect((err as ConfigError).variable).toBe(name);
      expect((err as Error).message).toStartWith(`invalid ${name}: `);
    }
  });
});
