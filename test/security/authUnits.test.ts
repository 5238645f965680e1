/**
 * The pure parts of src/auth and src/http/cors.ts, exercised directly: the one-timer expiry clock,
 * where a token is found, how claims are read, how CORS_ORIGINS is parsed and how an origin stands.
 */
import { describe, expect, test } from "bun:test";
import { ExpiryClock } from "../../src/auth/expiryClock.ts";
import { findToken, MAX_TOKEN_CHARS } from "../../src/auth/tokenTransport.ts";
import { covers, grantsOf } from "../../src/auth/grants.ts";
import { parseCorsOrigins } from "../../src/config/securityConfig.ts";
import { Cors } from "../../src/http/cors.ts";
import { ConfigError } from "../../src/config/config.ts";

describe("ExpiryClock", () => {
  test("fires each deadline once, in time order, whatever the order they were scheduled in", async () => {
    const clock = new ExpiryClock();
    const fired: number[] = [];
    const start = Date.now();
    for (const offset of [60, 20, 40, 0, -5]) clock.schedule(start + offset, () => fired.push(offset));
    await Bun.sleep(120);
    expect(fired).toEqual([-5, 0, 20, 40, 60]);
    expect(clock.size).toBe(0);
    clock.stop();
  });

  test("a cancelled entry never fires; an earlier deadline scheduled later re-arms the timer", async () => {
    const clock = new ExpiryClock();
    const fired: string[] = [];
    const now = Date.now();
    clock.schedule(now + 80, () => fired.push("late"));
    const cancel = clock.schedule(now + 30, () => fired.push("cancelled"));
    clock.schedule(now + 10, () => fired.push("early"));
    cancel();
    cancel(); // twice is harmless
    await Bun.sleep(40);
    expect(fired).toEqual(["early"]);
    await Bun.sleep(70);
    expect(fired).toEqual(["early", "late"]);
    clock.stop();
  });

  test("cancelled entries do not pile up: the heap is rebuilt when most are cancelled", () => {
    const clock = new ExpiryClock();
    const far = Date.now() + 3_600_000;
    const cancels = Array.from({ length: 1000 }, (_, i) => clock.schedule(far + i, () => {}));
    for (const c of cancels.slice(0, 990)) c();
    expect(clock.size).toBeLessThan(200);
    clock.stop();
  });

  test("a callback that throws does not stop the others", async () => {
    const clock = new ExpiryClock();
    const fired: string[] = [];
    const now = Date.now();
    clock.schedule(now, () => {
      throw new Error("boom");
    });
    clock.schedule(now, () => fired.push("second"));
    await Bun.sleep(20);
    expect(fired).toEqual(["second"]);
    clock.stop();
  });

  test("a deadline past setTimeout's range waits rather than firing at once", async () => {
    const clock = new ExpiryClock();
    let fired = false;
    clock.schedule(Date.now() + 40 * 24 * 3_600_000, () => (fired = true));
    await Bun.sleep(20);
    expect(fired).toBe(false);
    clock.stop();
  });
});

describe("findToken", () => {
  const req = (headers: Record<string, string>, query = "") => {
    const url = new URL(`http://node/matches/m/events${query}`);
    return findToken(new Request(url, { headers }), url);
  };

  test("header first, then cookie, then query", () => {
    expect(req({ authorization: "Bearer H", cookie: "touchline_token=C" }, "?access_token=Q")).toEqual({ token: "H", transport: "header" });
    expect(req({ cookie: "a=1; touchline_token=C; b=2" }, "?access_token=Q")).toEqual({ token: "C", transport: "cookie" });
    expect(req({ cookie: "other=1" }, "?access_token=Q")).toEqual({ token: "Q", transport: "query" });
    expect(req({})).toBeUndefined();
  });

  test("scheme is case-insensitive; quoted cookie values are unquoted", () => {
    expect(req({ authorization: "bearer  H " })).toEqual({ token: "H", transport: "header" });
    expect(req({ cookie: 'touchline_token="C"' })).toEqual({ token: "C", transport: "cookie" });
  });

  test("unusable tokens are reported, not skipped over", () => {
    const unusable: Record<string, string>[] = [
      { authorization: "Basic abc" },
      { authorization: "Bearer" },
      { authorization: "Bearer a b" },
      { cookie: "touchline_token=" },
    ];
    for (const headers of unusable) {
      expect(req(headers)).toHaveProperty("malformed");
    }
    expect(req({}, "?access_token=")).toHaveProperty("malformed");
    expect(req({ authorization: `Bearer ${"x".repeat(MAX_TOKEN_CHARS + 1)}` })).toHaveProperty("malformed");
  });
});

describe("claims", () => {
  test('"*" and arrays of match ids; absent grants nothing', () => {
    const g = grantsOf({ "touchline.publish": "*", "touchline.subscribe": ["a", "b"] });
    expect(g.ok).toBe(true);
    if (!g.ok) return;
    expect(covers(g.value.publish, "anything")).toBe(true);
    expect(covers(g.value.subscribe, "a")).toBe(true);
    expect(covers(g.value.subscribe, "c")).toBe(false);
    const none = grantsOf({});
    expect(none.ok && !covers(none.value.publish, "a") && !covers(none.value.subscribe, "a")).toBe(true);
    const starInArray = grantsOf({ "touchline.subscribe": ["a", "*"] });
    expect(starInArray.ok && covers(starInArray.value.subscribe, "zzz")).toBe(true);
  });

  test("a claim of the wrong shape is an error", () => {
    for (const bad of ["a", 1, { a: true }, [1], ["bad id with spaces"], [null]]) {
      expect(grantsOf({ "touchline.publish": bad }).ok).toBe(false);
      expect(grantsOf({ "touchline.subscribe": bad }).ok).toBe(false);
    }
  });
});

describe("CORS_ORIGINS and how an origin stands", () => {
  test("exact origins and *; anything else stops the node naming CORS_ORIGINS", () => {
    expect(parseCorsOrigins(undefined)).toEqual([]);
    expect(parseCorsOrigins(" https://a.example , http://b.example:8080,* ")).toEqual(["https://a.example", "http://b.example:8080", "*"]);
    for (const bad of ["https://a.example/", "https://a.example/path", "a.example", "ftp://a.example", "https://A.example", "null"]) {
      expect(() => parseCorsOrigins(bad)).toThrow(ConfigError);
      expect(() => parseCorsOrigins(bad)).toThrow("CORS_ORIGINS");
    }
  });

  test("listed, same-origin, wildcard, refused, none", () => {
    const at = (origin: string | undefined, host = "node.example:3000") =>
      new Request("http://node.example:3000/matches", { headers: { host, ...(origin ? { origin } : {}) } });
    const listedAndAny = new Cors(["https://a.example", "*"]);
    const listedOnly = new Cors(["https://a.example"]);
    expect(listedAndAny.standing(at("https://a.example"))).toBe("listed");
    expect(listedAndAny.standing(at("https://other.example"))).toBe("any");
    expect(listedOnly.standing(at("https://other.example"))).toBe("refused");
    expect(listedOnly.standing(at("null"))).toBe("refused");
    expect(listedOnly.standing(at("http://node.example:3000"))).toBe("same");
    expect(listedOnly.standing(at("http://node.example:3001"))).toBe("refused");
    expect(listedOnly.standing(at(undefined))).toBe("none");
    expect(listedAndAny.honoursCredentials(at("https://other.example"))).toBe(false);
    expect(listedOnly.honoursCredentials(at("https://a.example"))).toBe(true);
  });

  test("decorate is idempotent: one Vary: Origin, existing Vary kept", () => {
    const cors = new Cors(["https://a.example"]);
    const request = new Request("http://n/", { headers: { origin: "https://a.example" } });
    const res = new Response("x", { headers: { Vary: "Accept-Encoding" } });
    cors.decorate(request, cors.decorate(request, res));
    expect(res.headers.get("vary")).toBe("Accept-Encoding, Origin");
    expect(res.headers.get("access-control-allow-origin")).toBe("https://a.example");
  });
});
