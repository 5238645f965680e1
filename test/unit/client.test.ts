/**
 * The typed client (src/client) against a tiny local SSE server whose answers each test scripts:
 * timing of reconnects, `retry` and `Retry-After`, headers sent, resume by id, fatal answers, clean close.
 * Tests against a real node live with the node's tests.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  Backoff,
  matchStreamUrl,
  multiStreamUrl,
  poll,
  pollEvents,
  pollUrl,
  TouchlineHttpError,
  TouchlineProtocolError,
  TouchlineRefusedError,
  TouchlineStream,
  type MatchEvent,
  type StateChange,
} from "../../src/client/index.ts";
import { encodeComment, encodeMessage, encodeRetry } from "../../src/sse/encode.ts";

/** Timer and scheduling slack on a shared 2-core machine. */
const SLACK_MS = 120;
const ALMOST_ONE = 0.999;

interface Seen {
  at: number;
  url: URL;
  headers: Headers;
  aborted: Promise<void>;
}

/** One SSE connection as the script sees it. */
interface Conn {
  seen: Seen;
  send(text: string): void;
  end(): void;
}

type Script = (conn: Conn, index: number) => Response | undefined;

/** A local server: `/sse` answers per `script` (an event stream by default), other paths per `routes`. */
class ScriptedServer {
  readonly requests: Seen[] = [];
  readonly ends: number[] = [];
  private readonly open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  private readonly server;

  constructor(script: Script, routes: Record<string, (req: Request, url: URL) => Response | Promise<Response>> = {}) {
    const encoder = new TextEncoder();
    this.server = Bun.serve({
      port: 0,
      idleTimeout: 0,
      fetch: (req) => {
        const url = new URL(req.url);
        const route = routes[url.pathname];
        const seen: Seen = {
          at: performance.now(),
          url,
          headers: req.headers,
          aborted: new Promise((done) => req.signal.addEventListener("abort", () => done(), { once: true })),
        };
        this.requests.push(seen);
        if (route) return route(req, url);
        let answer: Response | undefined;
        let opened: ReadableStreamDefaultController<Uint8Array> | undefined;
        const body = new ReadableStream<Uint8Array>({
          start: (controller) => {
            opened = controller;
            this.open.add(controller);
            const conn: Conn = {
              seen,
              send: (text) => controller.enqueue(encoder.encode(text)),
              end: () => {
                this.ends.push(performance.now());
                this.open.delete(controller);
                controller.close();
              },
            };
            answer = script(conn, this.requests.length - 1);
          },
          cancel: () => void (opened && this.open.delete(opened)),
        });
        return answer ?? new Response(body, { headers: { "content-type": "text/event-stream; charset=utf-8" } });
      },
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  get sse(): string {
    return `${this.url}/sse`;
  }

  async waitForRequests(n: number, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} requests, saw ${this.requests.length}`);
      await Bun.sleep(5);
    }
  }

  stop(): void {
    for (const c of this.open) c.close();
    this.server.stop(true);
  }
}

const event = (id: string, type: string, match: string, data: unknown, extra: Record<string, unknown> = {}) =>
  encodeMessage({ id, event: type, data: JSON.stringify({ match, data, ts: 1_700_000_000_000, ...extra }) });

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

function serve(script: Script, routes?: ConstructorParameters<typeof ScriptedServer>[1]): ScriptedServer {
  const s = new ScriptedServer(script, routes);
  cleanup.push(() => s.stop());
  return s;
}

function stream(url: string, options: ConstructorParameters<typeof TouchlineStream>[1] = {}): TouchlineStream {
  const s = new TouchlineStream(url, { onError: () => {}, ...options });
  cleanup.push(() => s.close());
  return s;
}

/** Resolves with the first recorded change to `state`, waiting for it if needed. */
async function stateReached(changes: StateChange[], state: StateChange["state"], timeoutMs = 5_000): Promise<StateChange> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = changes.find((c) => c.state === state);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no "${state}" within ${timeoutMs} ms; saw ${changes.map((c) => c.state).join(",")}`);
    await Bun.sleep(5);
  }
}

describe("Backoff", () => {
  test("full jitter: each delay is uniform in [0, min(max, base·2^attempt)]", () => {
    const windows: number[] = [];
    const b = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => ALMOST_ONE });
    for (let i = 0; i < 6; i++) {
      windows.push(b.window());
      b.next();
    }
    expect(windows).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    const low = new Backoff({ initialMs: 100, random: () => 0 });
    expect([low.next(), low.next(), low.next()]).toEqual([0, 0, 0]);
  });

  test("the server's retry becomes the base, Retry-After is a floor, reset restarts the window", () => {
    const b = new Backoff({ initialMs: 1_000, random: () => 0.5 });
    b.setBase(300);
    expect(b.next()).toBe(150);
    expect(b.next()).toBe(300);
    expect(b.next(2_000)).toBe(2_000);
    b.reset();
    expect(b.window()).toBe(300);
  });
});

describe("TouchlineStream", () => {
  test("sends Accept, Authorization and Last-Event-ID, and calls a token function per connection", async () => {
    const server = serve((conn, i) => {
      conn.send(encodeRetry(10));
      conn.send(event(`m:${i + 5}`, "goal", "m", { team: "home" }));
      conn.end();
    });
    let tokens = 0;
    const s = stream(server.sse, { lastEventId: "m:4", token: () => `tok-${++tokens}`, headers: { "x-client": "unit" }, backoff: { maxMs: 20 } });
    await server.waitForRequests(2);
    s.close();
    const [first, second] = server.requests;
    expect(first!.headers.get("accept")).toBe("text/event-stream");
    expect(first!.headers.get("authorization")).toBe("Bearer tok-1");
    expect(first!.headers.get("last-event-id")).toBe("m:4");
    expect(first!.headers.get("x-client")).toBe("unit");
    expect(second!.headers.get("authorization")).toBe("Bearer tok-2");
    expect(second!.headers.get("last-event-id")).toBe("m:5");
  });

  test("delivers typed snapshots and events, and resumes after forced disconnects from the last id, without gap or duplicate", async () => {
    // The server holds 9 events; each connection sends at most 3 after the client's id and then drops it.
    const stored = Array.from({ length: 9 }, (_, i) => ({ seq: i + 1, minute: (i + 1) * 10 }));
    const server = serve((conn) => {
      const after = Number(conn.seen.headers.get("last-event-id") ?? 0);
      conn.send(encodeRetry(5));
      if (after === 0) conn.send(encodeMessage({ id: "0", event: "snapshot", data: JSON.stringify({ match: "m", state: { homeScore: 0 } }) }));
      for (const e of stored.filter((x) => x.seq > after).slice(0, 3)) {
        conn.send(event(String(e.seq), "goal", "m", { team: "home", minute: e.minute }, { state: { homeScore: e.seq } }));
      }
      conn.end();
    });
    const goals: MatchEvent<"goal", { team?: string; minute?: number }>[] = [];
    const snapshots: unknown[] = [];
    const s = stream(server.sse, { backoff: { maxMs: 10 } });
    s.on("snapshot", (e) => snapshots.push(e.state));
    s.on("goal", (e) => goals.push(e));
    const deadline = Date.now() + 5_000;
    while (goals.length < stored.length && Date.now() < deadline) await Bun.sleep(5);
    s.close();
    expect(goals.map((g) => g.id)).toEqual(stored.map((e) => String(e.seq)));
    expect(goals[2]).toEqual({ type: "goal", id: "3", match: "m", data: { team: "home", minute: 30 }, ts: 1_700_000_000_000, state: { homeScore: 3 } });
    expect(snapshots).toEqual([{ homeScore: 0 }]);
    expect(s.lastEventId).toBe("9");
    const resumedFrom = server.requests.slice(1).map((r) => r.headers.get("last-event-id"));
    expect(resumedFrom.slice(0, 2)).toEqual(["3", "6"]);
    for (const id of resumedFrom.slice(2)) expect(id).toBe("9");
  });

  test("honours retry: the reconnect window is the server's retry, not the client's default", async () => {
    const RETRY_MS = 400;
    const server = serve((conn) => {
      conn.send(encodeRetry(RETRY_MS));
      conn.send(event("1", "kickoff", "m", {}));
      conn.end();
    });
    const s = stream(server.sse, { backoff: { initialMs: 5_000, random: () => ALMOST_ONE } });
    await server.waitForRequests(3, 5_000);
    s.close();
    // Each connection delivered an event (healthy), so every wait is a first attempt: ~RETRY_MS.
    for (let i = 1; i < 3; i++) {
      const gap = server.requests[i]!.at - server.ends[i - 1]!;
      expect(gap).toBeGreaterThanOrEqual(RETRY_MS * ALMOST_ONE - 2);
      expect(gap).toBeLessThan(RETRY_MS + SLACK_MS);
    }
    expect(s.retryMs).toBe(RETRY_MS);
  });

  test("backs off exponentially within the full-jitter bounds while the server keeps failing", async () => {
    const BASE_MS = 40;
    const MAX_MS = 200;
    const server = serve(() => Response.json({ error: "unavailable", message: "later" }, { status: 503 }));
    const changes: StateChange[] = [];
    const s = stream(server.sse, { backoff: { initialMs: BASE_MS, maxMs: MAX_MS, random: () => ALMOST_ONE }, onStateChange: (c) => changes.push(c) });
    await server.waitForRequests(6);
    s.close();
    const gaps = server.requests.slice(1).map((r, i) => r.at - server.requests[i]!.at);
    const windows = [40, 80, 160, 200, 200];
    for (const [i, gap] of gaps.entries()) {
      expect(gap).toBeGreaterThanOrEqual(windows[i]! * ALMOST_ONE - 2);
      expect(gap).toBeLessThan(windows[i]! + SLACK_MS);
    }
    const reconnecting = changes.filter((c) => c.state === "reconnecting");
    expect(reconnecting.slice(0, 5).map((c) => c.attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(reconnecting[0]!.error).toBeInstanceOf(TouchlineHttpError);
    expect(reconnecting.slice(0, 5).map((c) => c.delayMs)).toEqual(windows.map((w) => Math.floor(w * ALMOST_ONE)));
  });

  test("with real randomness every delay stays inside its window", async () => {
    const server = serve(() => new Response("busy", { status: 502 }));
    const changes: StateChange[] = [];
    const s = stream(server.sse, { backoff: { initialMs: 20, maxMs: 80 }, onStateChange: (c) => changes.push(c) });
    await server.waitForRequests(8);
    s.close();
    const delays = changes.filter((c) => c.state === "reconnecting").map((c) => c.delayMs!);
    expect(delays.length).toBeGreaterThanOrEqual(7);
    for (const [i, d] of delays.entries()) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(80, 20 * 2 ** i));
    }
  });

  test("waits at least Retry-After on 429/503", async () => {
    const server = serve((_, i) =>
      i === 0 ? Response.json({ error: "rate_limited", message: "slow down" }, { status: 429, headers: { "retry-after": "1" } }) : undefined,
    );
    const s = stream(server.sse, { backoff: { initialMs: 10, random: () => 0 } });
    await server.waitForRequests(2);
    s.close();
    expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(1_000 - 2);
  });

  test("a touchline.refused stream waits its retryAfterMs before the next attempt and reports the refusal", async () => {
    const server = serve((conn, i) => {
      if (i === 0) {
        conn.send(encodeRetry(600));
        conn.send(`event: touchline.refused\ndata: {"error":"at_capacity","message":"full","retryAfterMs":600}\n\n`);
        conn.end();
      } else {
        conn.send(event(String(i), "kickoff", "m", {}));
      }
    });
    const changes: StateChange[] = [];
    const s = stream(server.sse, { onStateChange: (c) => changes.push(c), backoff: { initialMs: 10, random: () => 0 } });
    await server.waitForRequests(2);
    s.close();
    expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(600 - 2);
    const reconnecting = changes.find((c) => c.state === "reconnecting")!;
    expect(reconnecting.error).toBeInstanceOf(TouchlineRefusedError);
    expect((reconnecting.error as TouchlineRefusedError).code).toBe("at_capacity");
  });

  test("reports each state change: connecting, open, reconnecting, open, closed", async () => {
    const server = serve((conn, i) => {
      conn.send(encodeRetry(10));
      conn.send(event(String(i + 1), "kickoff", "m", {}));
      if (i === 0) conn.end();
    });
    const changes: StateChange[] = [];
    const s = stream(server.sse, { onStateChange: (c) => changes.push(c), backoff: { maxMs: 10 } });
    expect(s.readyState).toBe(TouchlineStream.CONNECTING);
    await server.waitForRequests(2);
    while (changes.filter((c) => c.state === "open").length < 2) await Bun.sleep(5);
    expect(s.readyState).toBe(TouchlineStream.OPEN);
    s.close();
    expect(s.readyState).toBe(TouchlineStream.CLOSED);
    expect(changes.map((c) => c.state)).toEqual(["connecting", "open", "reconnecting", "open", "closed"]);
    expect(changes[2]!.previous).toBe("open");
  });

  test("closes for good on 401 and on a non-SSE answer, without retrying", async () => {
    const unauthorised = serve(() => Response.json({ error: "unauthorized", message: "send a valid token" }, { status: 401 }));
    const changes: StateChange[] = [];
    stream(unauthorised.sse, { onStateChange: (c) => changes.push(c), backoff: { initialMs: 1 } });
    const closed = await stateReached(changes, "closed");
    expect(closed.error).toBeInstanceOf(TouchlineHttpError);
    expect((closed.error as TouchlineHttpError).status).toBe(401);
    expect((closed.error as TouchlineHttpError).code).toBe("unauthorized");

    const html = serve(() => new Response("<html>", { headers: { "content-type": "text/html" } }));
    const htmlChanges: StateChange[] = [];
    stream(html.sse, { onStateChange: (c) => htmlChanges.push(c), backoff: { initialMs: 1 } });
    expect((await stateReached(htmlChanges, "closed")).error).toBeInstanceOf(TouchlineProtocolError);
    await Bun.sleep(50);
    expect([unauthorised.requests.length, html.requests.length]).toEqual([1, 1]);
  });

  test("reconnects when nothing, not even a ping, arrives within the idle timeout", async () => {
    const server = serve((conn, i) => {
      conn.send(encodeRetry(10));
      if (i > 0) conn.send(encodeComment("ping"));
    });
    const errors: Error[] = [];
    const s = stream(server.sse, { idleTimeoutMs: 150, backoff: { maxMs: 10 }, onError: (e) => errors.push(e) });
    await server.waitForRequests(2, 2_000);
    expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(150 - 2);
    expect(errors[0]?.message).toContain("no data for 150 ms");
    s.close();
  });

  test("close() aborts the request in flight and stops reconnecting", async () => {
    const server = serve((conn) => {
      conn.send(encodeRetry(10));
    });
    const s = stream(server.sse);
    await server.waitForRequests(1);
    while (s.state !== "open") await Bun.sleep(5);
    const t0 = performance.now();
    s.close();
    await server.requests[0]!.aborted;
    expect(performance.now() - t0).toBeLessThan(SLACK_MS);
    await s.done;
    await Bun.sleep(50);
    expect(server.requests).toHaveLength(1);
  });

  test("a listener that throws does not stop the others or the stream", async () => {
    const server = serve((conn) => {
      conn.send(event("1", "goal", "m", {}));
      conn.send(event("2", "card", "m", {}));
    });
    const errors: Error[] = [];
    const seen: string[] = [];
    const s = stream(server.sse, { onError: (e) => errors.push(e) });
    s.on("goal", () => {
      throw new Error("listener bug");
    });
    s.onAny((e) => seen.push(e.id));
    while (seen.length < 2) await Bun.sleep(5);
    expect(seen).toEqual(["1", "2"]);
    expect(errors.map((e) => e.message)).toEqual(["listener bug"]);
  });

  test("in a separate Node process, close() leaves nothing running: the process exits by itself", async () => {
    // Bundled for Node (the project runs on Bun; users may not), then run there with a stream open.
    const server = serve((conn) => {
      conn.send(encodeRetry(10) + event("1", "goal", "m", {}));
    });
    const dir = await mkdtemp(join(tmpdir(), "touchline-client-"));
    cleanup.push(() => void rm(dir, { recursive: true, force: true }));
    const bundle = await Bun.build({ entrypoints: [resolve(import.meta.dir, "../../src/client/index.ts")], target: "node", outdir: dir });
    expect(bundle.success).toBe(true);
    const script = join(dir, "run.mjs");
    await Bun.write(
      script,
      `import { TouchlineStream } from "./index.js";
       const s = new TouchlineStream(process.argv[2], { onStateChange: (c) => console.log(c.state) });
       s.on("goal", (e) => { console.log("goal " + e.id); s.close(); });`,
    );
    const proc = Bun.spawn(["node", script, server.sse], { stdout: "pipe", stderr: "pipe" });
    const exited = await Promise.race([proc.exited, Bun.sleep(5_000).then(() => "still running")]);
    if (exited === "still running") proc.kill();
    expect(exited).toBe(0);
    expect((await new Response(proc.stdout).text()).trim().split("\n")).toEqual(["connecting", "open", "goal 1", "closed"]);
  });
});

describe("URLs", () => {
  test("keep a base path prefix and encode what they carry", () => {
    expect(matchStreamUrl("http://h/api", "ars-che")).toBe("http://h/api/matches/ars-che/events");
    expect(multiStreamUrl("http://h/", ["a", "b"])).toBe("http://h/events?match=a&match=b");
    expect(pollUrl("http://h", "a", "17")).toBe("http://h/matches/a/poll?after=17");
    expect(pollUrl("http://h", "a", undefined, 250)).toBe("http://h/matches/a/poll?wait=250");
    expect(() =>
      multiStreamUrl(
        "http://h",
        Array.from({ length: 65 }, (_, i) => `m${i}`),
      ),
    ).toThrow(RangeError);
    expect(() => multiStreamUrl("http://h", [])).toThrow(RangeError);
  });
});

describe("poll", () => {
  /** A poll route over a fixed log of 5 events, 2 per answer. */
  function pollServer() {
    const log = Array.from({ length: 5 }, (_, i) => ({ id: String(i + 1), type: "goal", data: { n: i + 1 }, ts: 1 }));
    return serve(() => undefined, {
      "/matches/m/poll": (req, url) => {
        if (req.headers.get("authorization") !== "Bearer t") return Response.json({ error: "unauthorized", message: "token" }, { status: 401 });
        if (!url.searchParams.has("after")) {
          // As the node does: no id to resume from, so the state up to the latest event instead.
          const latest = Number(url.searchParams.get("latest") ?? 2);
          return Response.json({
            match: "m",
            events: [],
            next: latest > 0 ? String(latest) : null,
            snapshot: { id: latest > 0 ? String(latest) : null, state: { n: latest } },
          });
        }
        const after = Number(url.searchParams.get("after"));
        const events = log.filter((e) => Number(e.id) > after).slice(0, 2);
        return Response.json({ events, next: events.at(-1)?.id ?? String(after) });
      },
    });
  }

  test("poll() sends after and the token, and returns events and next", async () => {
    const server = pollServer();
    const result = await poll<{ n: number }>(server.url, "m", { after: "2", token: "t" });
    expect(result).toEqual({
      events: [
        { id: "3", type: "goal", data: { n: 3 }, ts: 1 },
        { id: "4", type: "goal", data: { n: 4 }, ts: 1 },
      ],
      next: "4",
    });
    await expect(poll(server.url, "m", { after: "2" })).rejects.toBeInstanceOf(TouchlineHttpError);
  });

  test("pollEvents() yields every event once, in order, across polls, and stops on abort", async () => {
    const server = pollServer();
    const abort = new AbortController();
    const ids: string[] = [];
    for await (const e of pollEvents(server.url, "m", { token: "t", signal: abort.signal, after: "0" })) {
      ids.push(e.id);
      if (ids.length === 5) abort.abort();
    }
    expect(ids).toEqual(["1", "2", "3", "4", "5"]);
  });

  test("without an id, pollEvents() starts from the snapshot and goes on after its id", async () => {
    const server = pollServer();
    const abort = new AbortController();
    const seen: string[] = [];
    for await (const e of pollEvents(server.url, "m", { token: "t", signal: abort.signal })) {
      seen.push(`${e.type}:${e.id}`);
      if (seen.length === 4) abort.abort();
    }
    expect(seen).toEqual(["snapshot:2", "goal:3", "goal:4", "goal:5"]);
  });

  test("a snapshot of a match with no events resumes from 0, so the next poll waits instead of spinning", async () => {
    const server = pollServer();
    const result = await poll(server.url, "m", { token: "t", fetch: (url, init) => fetch(`${url}?latest=0`, init) });
    expect(result.snapshot).toEqual({ type: "snapshot", id: "0", state: { n: 0 } });
    expect(result.next).toBe("0");
  });

  test("pollEvents() throws on a fatal answer", async () => {
    const server = pollServer();
    const run = async () => {
      for await (const _ of pollEvents(server.url, "m", {})) void _;
    };
    await expect(run()).rejects.toBeInstanceOf(TouchlineHttpError);
  });

  test("poll() gives up after its timeout and rejects", async () => {
    const server = serve(() => undefined, { "/matches/m/poll": () => Bun.sleep(2_000).then(() => Response.json({ events: [], next: "" })) });
    const t0 = performance.now();
    await expect(poll(server.url, "m", { timeoutMs: 100 })).rejects.toThrow("poll took over 100 ms");
    expect(performance.now() - t0).toBeLessThan(100 + SLACK_MS);
  });
});
