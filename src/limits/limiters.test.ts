/**
 * The pure limiter pieces: token bucket arithmetic, keyed buckets in bounded memory (idle sweep, cap
 * with least-recently-used eviction), per-key concurrency with idempotent release, head size.
 * Time is passed in, so nothing here sleeps.
 */
import { describe, expect, test } from "bun:test";
import { fullBucket, refillMs, tryTake, type BucketRate } from "./tokenBucket.ts";
import { KeyedRateLimiter } from "./keyedRateLimiter.ts";
import { KeyedConcurrency } from "./keyedConcurrency.ts";
import { requestHeadBytes } from "./requestHeadBytes.ts";
import { NodeLimits } from "./nodeLimits.ts";
import { LimitError } from "./limitError.ts";
import { loadConfig } from "../config/config.ts";

const RATE: BucketRate = { perSecond: 10, burst: 5 };

describe("token bucket", () => {
  test("a full bucket admits `burst` at once, then refuses with the wait for one token", () => {
    const b = fullBucket(RATE, 0);
    for (let i = 0; i < RATE.burst; i++) expect(tryTake(b, RATE, 0)).toBe(0);
    expect(tryTake(b, RATE, 0)).toBeCloseTo(100, 6); // 1 token at 10/s
    expect(tryTake(b, RATE, 40)).toBeCloseTo(60, 6);
    expect(tryTake(b, RATE, 100)).toBe(0);
    expect(tryTake(b, RATE, 100)).toBeCloseTo(100, 6);
  });

  test("a refused take spends nothing", () => {
    const b = fullBucket({ perSecond: 1, burst: 1 }, 0);
    expect(tryTake(b, { perSecond: 1, burst: 1 }, 0)).toBe(0);
    for (let i = 0; i < 100; i++) expect(tryTake(b, { perSecond: 1, burst: 1 }, 500)).toBeCloseTo(500, 6);
    expect(tryTake(b, { perSecond: 1, burst: 1 }, 1000)).toBe(0);
  });

  test("refill stops at burst however long the bucket idled, and a clock going back adds nothing", () => {
    const b = fullBucket(RATE, 0);
    for (let i = 0; i < RATE.burst; i++) tryTake(b, RATE, 0);
    let admitted = 0;
    while (tryTake(b, RATE, 3_600_000) === 0) admitted++;
    expect(admitted).toBe(RATE.burst);
    expect(tryTake(b, RATE, 1000)).toBeGreaterThan(0);
  });

  test("sustained rate: over 10 s at 10/s, burst + 100 admitted from 1,000 attempts", () => {
    const b = fullBucket(RATE, 0);
    let admitted = 0;
    for (let t = 0; t < 10_000; t += 10) if (tryTake(b, RATE, t) === 0) admitted++;
    expect(admitted).toBeGreaterThanOrEqual(RATE.burst + 99);
    expect(admitted).toBeLessThanOrEqual(RATE.burst + 100);
  });

  test("refillMs is the time from empty to full", () => {
    expect(refillMs(RATE)).toBe(500);
    expect(refillMs({ perSecond: 0.5, burst: 2 })).toBe(4000);
  });
});

describe("KeyedRateLimiter", () => {
  test("keys have separate buckets", () => {
    const l = new KeyedRateLimiter(RATE, 100);
    for (let i = 0; i < RATE.burst; i++) expect(l.take("a", 0)).toBe(0);
    expect(l.take("a", 0)).toBeGreaterThan(0);
    expect(l.take("b", 0)).toBe(0);
    expect(l.size).toBe(2);
  });

  test("sweep drops exactly the keys idle for a whole refill, which lose nothing by it", () => {
    const l = new KeyedRateLimiter(RATE, 100);
    l.take("old", 0);
    l.take("mid", 300);
    l.take("new", 450);
    expect(l.sweep(499)).toBe(0);
    expect(l.sweep(500)).toBe(1); // "old" idle 500 ms = refillMs
    expect(l.size).toBe(2);
    expect(l.sweep(10_000)).toBe(2);
    expect(l.size).toBe(0);
  });

  test("a touched key moves to the back: the sweep keeps it", () => {
    const l = new KeyedRateLimiter(RATE, 100);
    l.take("a", 0);
    l.take("b", 100);
    l.take("a", 400);
    expect(l.sweep(650)).toBe(1); // b idle 550, a idle 250
    expect(l.take("a", 650)).toBe(0);
  });

  test("an emptied key stays limited across sweeps until it has refilled", () => {
    const l = new KeyedRateLimiter(RATE, 100);
    for (let i = 0; i < RATE.burst; i++) l.take("x", 0);
    l.sweep(200);
    expect(l.size).toBe(1);
    let admitted = 0;
    while (l.take("x", 200) === 0) admitted++;
    expect(admitted).toBe(2); // 200 ms at 10/s
  });

  test("past maxKeys the least recently used key is dropped, never growing the map", () => {
    const l = new KeyedRateLimiter(RATE, 1000);
    for (let i = 0; i < 100_000; i++) l.take(`scanner-${i}`, i * 0.001);
    expect(l.size).toBe(1000);
    expect(l.evictions).toBe(99_000);
  });

  test("at the cap idle keys are swept first, so no live key is evicted", () => {
    const l = new KeyedRateLimiter(RATE, 3);
    l.take("a", 0);
    l.take("b", 0);
    l.take("c", 1000);
    l.take("d", 1000); // a and b are idle past refill: swept, not evicted
    expect(l.evictions).toBe(0);
    expect(l.size).toBe(2);
  });

  test("rejects settings that cannot work", () => {
    expect(() => new KeyedRateLimiter({ perSecond: 0, burst: 1 }, 10)).toThrow(RangeError);
    expect(() => new KeyedRateLimiter({ perSecond: 1, burst: 0 }, 10)).toThrow(RangeError);
    expect(() => new KeyedRateLimiter(RATE, 0)).toThrow(RangeError);
  });

  test("cost: under 5 µs a take with 100,000 keys tracked", () => {
    const l = new KeyedRateLimiter({ perSecond: 1, burst: 1_000_000 }, 100_000);
    const N = 200_000;
    const started = performance.now();
    for (let i = 0; i < N; i++) l.take(`10.0.${(i >> 8) & 255}.${i & 255}`, i);
    const perTakeUs = ((performance.now() - started) * 1000) / N;
    console.log(`KeyedRateLimiter.take: ${perTakeUs.toFixed(3)} µs per call over ${N} calls`);
    expect(perTakeUs).toBeLessThan(5);
  });
});

describe("KeyedRateLimiter memory", () => {
  /** Heap bytes a full limiter of `keys` IPv4-like keys holds, measured after a forced GC. */
  function heapOf(keys: number): number {
    Bun.gc(true);
    const before = process.memoryUsage().heapUsed;
    const l = new KeyedRateLimiter(RATE, keys);
    for (let i = 0; i < keys; i++) l.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 0);
    Bun.gc(true);
    const used = process.memoryUsage().heapUsed - before;
    expect(l.size).toBe(keys);
    return used;
  }

  test("a limiter at LIMITER_MAX_KEYS (100,000) holds under 25 MB", () => {
    const bytes = heapOf(100_000);
    console.log(`KeyedRateLimiter: ${(bytes / 1e6).toFixed(1)} MB for 100,000 keys (${Math.round(bytes / 100_000)} B/key)`);
    expect(bytes).toBeLessThan(25e6);
  });
});

describe("KeyedConcurrency", () => {
  test("caps each key, frees on release, forgets a key at zero", () => {
    const c = new KeyedConcurrency(2);
    const r1 = c.tryAcquire("a")!;
    const r2 = c.tryAcquire("a")!;
    expect(c.tryAcquire("a")).toBeUndefined();
    expect(c.tryAcquire("b")).toBeDefined();
    expect(c.count("a")).toBe(2);
    r1();
    expect(c.count("a")).toBe(1);
    expect(c.tryAcquire("a")).toBeDefined();
    r2();
    expect(c.size).toBe(2);
  });

  test("a release called twice frees one slot only", () => {
    const c = new KeyedConcurrency(3);
    const r1 = c.tryAcquire("a")!;
    c.tryAcquire("a");
    r1();
    r1();
    r1();
    expect(c.count("a")).toBe(1);
  });

  test("after every release the map is empty (memory bounded by what is held)", () => {
    const c = new KeyedConcurrency(5);
    const releases = [];
    for (let i = 0; i < 10_000; i++) releases.push(c.tryAcquire(`k${i % 700}`));
    expect(c.size).toBe(700);
    for (const r of releases) r?.();
    expect(c.size).toBe(0);
  });
});

describe("requestHeadBytes", () => {
  test("counts the request line and each header line", () => {
    const headers = new Headers({ host: "example.com", "x-a": "12345" });
    // "GET /p?q=1 HTTP/1.1\r\n" (21) + "host: example.com\r\n" (19) + "x-a: 12345\r\n" (12) + "\r\n" (2)
    expect(requestHeadBytes("GET", "http://example.com/p?q=1", headers)).toBe(54);
  });

  test("grows with a header's size", () => {
    const small = requestHeadBytes("GET", "http://h/", new Headers({ cookie: "a" }));
    const big = requestHeadBytes("GET", "http://h/", new Headers({ cookie: "a".repeat(10_001) }));
    expect(big - small).toBe(10_000);
  });

  test("repeated Set-Cookie lines count one line each", () => {
    const headers = new Headers();
    headers.append("set-cookie", "a=1");
    headers.append("set-cookie", "b=22");
    // "GET / HTTP/1.1\r\n" (16) + "set-cookie: a=1\r\n" (17) + "set-cookie: b=22\r\n" (18) + "\r\n" (2)
    expect(requestHeadBytes("GET", "http://h/", headers)).toBe(53);
  });
});

describe("NodeLimits.admitPublish", () => {
  /** A server stand-in that counts how often the request's peer is asked for (a system call in Bun). */
  function peerLookups(address: string) {
    const lookups = { count: 0 };
    const server = {
      requestIP: () => {
        lookups.count++;
        return { address, family: "IPv4" as const, port: 40000 };
      },
    };
    return { lookups, server };
  }
  const publish = (token?: string) =>
    new Request("http://node.test/matches/m1/events", { method: "POST", headers: token ? { authorization: `Bearer ${token}` } : {} });
  const limitsOf = (tokens: boolean) => {
    const config = loadConfig({ NODE_ID: "n1", PUBLISH_RATE: "1", PUBLISH_BURST: "3" });
    const tokenOf = (r: Request) => r.headers.get("authorization")?.slice("Bearer ".length);
    return new NodeLimits(config.limits, { now: () => 0, ...(tokens ? { tokenOf } : {}) });
  };
  const refused = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      return err instanceof LimitError && err.status === 429;
    }
    return false;
  };

  test("a publish presenting a token is counted by its token, and its address is never asked for", () => {
    const limits = limitsOf(true);
    const { lookups, server } = peerLookups("203.0.113.7");
    for (let i = 0; i < 3; i++) limits.admitPublish(publish("tok-a"), server);
    expect(refused(() => limits.admitPublish(publish("tok-a"), server))).toBe(true);
    // Another token from the same address has its own bucket.
    limits.admitPublish(publish("tok-b"), server);
    expect(lookups.count).toBe(0);
  });

  test("a publish without a token is counted by its address (looked up once a publish); exempt addresses are not counted", () => {
    const limits = limitsOf(true);
    const outside = peerLookups("203.0.113.7");
    for (let i = 0; i < 3; i++) limits.admitPublish(publish(), outside.server);
    expect(refused(() => limits.admitPublish(publish(), outside.server))).toBe(true);
    expect(outside.lookups.count).toBe(4);
    const loopback = peerLookups("127.0.0.1");
    for (let i = 0; i < 10; i++) limits.admitPublish(publish(), loopback.server);
    expect(loopback.lookups.count).toBe(10);
  });

  test("without tokens verified, a presented token is ignored: the address counts", () => {
    const limits = limitsOf(false);
    const { lookups, server } = peerLookups("203.0.113.7");
    for (let i = 0; i < 3; i++) limits.admitPublish(publish(`tok-${i}`), server);
    expect(refused(() => limits.admitPublish(publish("tok-9"), server))).toBe(true);
    expect(lookups.count).toBe(4);
  });
});
