/**
 * The typed client (src/client) against real Touchline nodes over real NATS JetStream: exact resume
 * after forced disconnects (connections cut at the entry, the node killed and restarted), backoff timing
 * while the node is down, the server's `retry:` honoured, clean close (no request after it, the node's
 * open-stream gauge back to 0) and typed events. The Authorization header is checked against a small
 * recording server, since nodes run open here (auth is tested with the auth feature).
 *
 * The client reaches node A through the project's L4 balancer (cluster/tcpBalancer.ts) so the test can
 * cut its connections and count its attempts; events are published on node B, which stays up.
 */
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startTcpBalancer, type TcpBalancer } from "../../cluster/tcpBalancer.ts";
import { matchStreamUrl, multiStreamUrl, poll, TouchlineStream, type ConnectionState, type MatchEvent, type StateChange } from "../../src/client/index.ts";
import { freePort, startNats, startNode, waitFor, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { cursorOf, idOf, tagOf } from "../helpers/eventIds.ts";
import { seededRandom } from "../helpers/seededRandom.ts";
import { metricValue, publish, uniqueMatch, untilLatest, type PublishBody } from "./touchlineApi.ts";

setDefaultTimeout(45_000);

/** The node's RETRY_MS: each stream gets it with ±50% jitter. */
const RETRY_MS = 200;
const RETRY_JITTER = 0.5;
/** The client's backoff ceiling here, so a test sees the window reach it within seconds. */
const BACKOFF_CAP_MS = 1_000;
/** Timers, sockets and a shared 2-core machine: how late an attempt may come after its delay. */
const LATENESS_MS = 250;
/** Timers are rounded to whole milliseconds, so a delay may end a hair before its announced length. */
const EARLINESS_MS = 2;
const NODE_ENV = { RETRY_MS: String(RETRY_MS) };

/** The client's way in: the project's L4 balancer in front of node A, which a test can cut or empty. */
class Entry {
  /** performance.now() of every connection accepted: one per stream attempt (publishes bypass the entry). */
  readonly accepts: number[] = [];
  /** With no backend the entry drops each connection at once, like a balancer whose nodes are all gone. */
  refusing = false;
  private balancer: TcpBalancer;

  constructor(
    readonly port: number,
    private readonly backendPort: () => number,
  ) {
    this.balancer = this.listen();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Drops every open connection at once and keeps accepting new ones. */
  cut(): void {
    this.balancer.stop();
    this.balancer = this.listen();
  }

  acceptsSince(t: number): number[] {
    return this.accepts.filter((a) => a >= t);
  }

  stop(): void {
    this.balancer.stop();
  }

  private listen(): TcpBalancer {
    return startTcpBalancer({
      port: this.port,
      hostname: "127.0.0.1",
      backends: () => {
        this.accepts.push(performance.now());
        return this.refusing ? [] : [{ host: "127.0.0.1", port: this.backendPort() }];
      },
    });
  }
}

interface Published {
  match: string;
  id: string;
  n: number;
}

/** Publishes on `baseUrl`, retrying transient failures with the same idempotency key (stored once). */
async function publishSurely(baseUrl: string, match: string, body: PublishBody, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const keyed = { ...body, key: crypto.randomUUID() };
  for (;;) {
    const answer = await publish(baseUrl, match, keyed).catch(() => undefined);
    if (answer && (answer.status === 201 || answer.status === 200)) return answer.json.id;
    if (answer && answer.status !== 503) throw new Error(`publish answered ${answer.status}: ${JSON.stringify(answer.json)}`);
    if (Date.now() > deadline) throw new Error(`publish to ${match} kept failing`);
    await Bun.sleep(50);
  }
}

/** A client stream recording its match events, state changes (timed) and errors. */
function recorded(url: string, options: ConstructorParameters<typeof TouchlineStream>[1] = {}) {
  const events: MatchEvent[] = [];
  const changes: (StateChange & { at: number })[] = [];
  const errors: Error[] = [];
  const stream = new TouchlineStream(url, {
    ...options,
    onStateChange: (c) => changes.push({ ...c, at: performance.now() }),
    onError: (e) => errors.push(e),
  });
  stream.onAny((e) => {
    if (e.type !== "snapshot" && !e.type.startsWith("touchline.")) events.push(e as MatchEvent);
  });
  const opened = () => changes.filter((c) => c.state === "open").length;
  const untilState = (state: ConnectionState, count = 1, timeoutMs = 10_000) =>
    waitFor(async () => changes.filter((c) => c.state === state).length >= count, timeoutMs, `${count}× ${state}`);
  return { stream, events, changes, errors, opened, untilState };
}

/**
 * The per-match event id inside an event id (`<seq>@<tag>` as is on single-match streams; on multiplexed
 * ones, the match's seq in the composite `a:1,b:2@<tag>` under its tag).
 */
function matchIdOf(e: MatchEvent): string {
  if (!e.id.includes(":")) return e.id;
  const seq = cursorOf(e.id).get(e.match);
  return seq === undefined ? `(${e.match} missing from ${e.id})` : idOf(seq, tagOf(e.id));
}

function expectExactlyOnceInOrder(received: MatchEvent[], published: Published[], matches: string[]): void {
  for (const match of matches) {
    const want = published.filter((p) => p.match === match);
    const got = received.filter((e) => e.match === match);
    expect(got.map(matchIdOf)).toEqual(want.map((p) => p.id));
    expect(got.map((e) => (e.data as { n: number }).n)).toEqual(want.map((p) => p.n));
  }
}

/** Full-jitter window of attempt k (counted since the last healthy connection) with base `retry`. */
const windowOf = (retry: number, attempt: number) => Math.min(BACKOFF_CAP_MS, retry * 2 ** attempt);

describe("client against a real node", () => {
  let nats: NatsFixture;
  let nodeA: NodeFixture;
  let nodeB: NodeFixture;
  let entry: Entry;
  const open: TouchlineStream[] = [];

  const track = <T extends { stream: TouchlineStream }>(client: T): T => {
    open.push(client.stream);
    return client;
  };

  /** SIGKILLs node A; returns a function that starts a fresh node process on the same port. */
  async function killNodeA(): Promise<() => Promise<void>> {
    const port = nodeA.port;
    await nodeA.kill();
    return async () => {
      nodeA = await startNode({ natsUrl: nats.url, port, env: NODE_ENV });
    };
  }

  beforeAll(async () => {
    nats = await startNats();
    [nodeA, nodeB] = await Promise.all([startNode({ natsUrl: nats.url, env: NODE_ENV }), startNode({ natsUrl: nats.url, env: NODE_ENV })]);
    entry = new Entry(await freePort(), () => nodeA.port);
  });

  afterEach(async () => {
    for (const s of open.splice(0)) s.close();
    entry.refusing = false;
  });

  afterAll(async () => {
    entry?.stop();
    await Promise.all([nodeA?.kill(), nodeB?.kill()]);
    await nats?.stop();
  });

  test("resumes after forced disconnects (cuts, refusals, the node killed and restarted): every event once, in order", async () => {
    const m1 = uniqueMatch("cres1");
    const m2 = uniqueMatch("cres2");
    const published: Published[] = [];
    published.push({ match: m1, n: 0, id: await publishSurely(nodeB.url, m1, { type: "kickoff", data: { n: 0 } }) });
    published.push({ match: m2, n: 1, id: await publishSurely(nodeB.url, m2, { type: "kickoff", data: { n: 1 } }) });
    // Snapshots taken before node A has seen the kick-offs would be one event behind (it then follows live).
    for (const p of published) await untilLatest(nodeA.url, p.match, p.id);
    const backoff = { maxMs: BACKOFF_CAP_MS, random: seededRandom(5) };
    const single = track(recorded(matchStreamUrl(entry.url, m1), { backoff, lastEventId: published[0]!.id }));
    const multi = track(recorded(multiStreamUrl(entry.url, [m1, m2]), { backoff: { ...backoff, random: seededRandom(6) } }));
    await Promise.all([single.untilState("open"), multi.untilState("open")]);
    // The multiplexed stream started from snapshots: it owes every event after them.
    const owedToMulti = published.length;

    let publishing = true;
    const publisher = (async () => {
      for (let n = 2; publishing || n < 40; n++) {
        const match = n % 3 === 0 ? m2 : m1;
        published.push({ match, n, id: await publishSurely(nodeB.url, match, { type: n % 2 ? "card" : "goal", data: { n }, state: { n } }) });
        await Bun.sleep(15);
      }
    })();

    // Each disruption waits until both clients are open again, so none lands in a backoff sleep where it
    // would cut nothing: every one of the six must cost exactly one reconnect.
    let disruptions = 0;
    const bothOpenAgain = async () => {
      disruptions++;
      await Promise.all([single.untilState("open", disruptions + 1, 15_000), multi.untilState("open", disruptions + 1, 15_000)]);
    };
    for (let i = 0; i < 3; i++) {
      await Bun.sleep(200);
      entry.cut();
      await bothOpenAgain();
    }
    await Bun.sleep(200);
    entry.refusing = true; // reconnects meet a balancer with no backend for a while
    entry.cut();
    await Bun.sleep(400);
    entry.refusing = false;
    await bothOpenAgain();
    await Bun.sleep(300);
    const restartNodeA = await killNodeA();
    await Bun.sleep(300);
    await restartNodeA();
    await bothOpenAgain();
    await Bun.sleep(300);
    entry.cut();
    await bothOpenAgain();
    publishing = false;
    await publisher;

    const owedToSingle = published.filter((p) => p.match === m1).length - 1;
    const owedToMultiNow = published.length - owedToMulti;
    await waitFor(async () => single.events.length >= owedToSingle && multi.events.length >= owedToMultiNow, 20_000, "every event");
    await Bun.sleep(200); // a duplicate would show up now
    expectExactlyOnceInOrder(single.events, published.slice(1), [m1]);
    expectExactlyOnceInOrder(multi.events, published.slice(owedToMulti), [m1, m2]);
    // The first open, then one per disruption: a cut that cost two reconnects would show here.
    expect(single.opened()).toBe(1 + disruptions);
    expect(multi.opened()).toBe(1 + disruptions);
    expect(single.stream.state).toBe("open");
    console.log(`resume: ${published.length} events, single opened ${single.opened()}×, multiplexed ${multi.opened()}×`);
  });

  test("while the node is down, attempts are spaced by full-jitter delays over the received retry, growing to the cap", async () => {
    const seed = 17;
    const client = track(recorded(matchStreamUrl(entry.url, uniqueMatch("cback")), { backoff: { maxMs: BACKOFF_CAP_MS, random: seededRandom(seed) } }));
    await client.untilState("open");
    await waitFor(async () => client.stream.retryMs !== undefined, 5_000, "retry");
    const retry = client.stream.retryMs!;

    const killedAt = performance.now();
    const restartNodeA = await killNodeA();
    const downMs = 3_500;
    await Bun.sleep(downMs);
    const restartAt = performance.now();
    const attempts = entry.acceptsSince(killedAt).filter((a) => a < restartAt);
    const reconnects = client.changes.filter((c) => c.state === "reconnecting" && c.at >= killedAt && c.at < restartAt);
    await restartNodeA();
    await client.untilState("open", 2, 15_000);

    // The same seed gives the delays the client must have drawn: uniform in [0, window), window doubling from the retry.
    const random = seededRandom(seed);
    const expected = reconnects.map((_, k) => Math.floor(random() * windowOf(retry, k)));
    expect(reconnects.map((c) => c.delayMs)).toEqual(expected);
    expect(reconnects.map((c) => c.attempt)).toEqual(reconnects.map((_, k) => k + 1));
    // Each attempt reached the entry after the delay it announced, and not much later.
    const gaps: number[] = [];
    for (const [k, change] of reconnects.entries()) {
      // The attempt this delay led to (the failed attempt that caused it came just before).
      const next = attempts.find((a) => a > change.at);
      if (next === undefined) break; // the last delay ran past the restart
      gaps.push(next - change.at);
      expect(next - change.at).toBeGreaterThanOrEqual(expected[k]! - EARLINESS_MS);
      expect(next - change.at).toBeLessThanOrEqual(expected[k]! + LATENESS_MS);
    }
    // Enough attempts to see the window reach its cap (retry ≤ 300 ms doubles to 1 s within three).
    expect(gaps.length).toBeGreaterThanOrEqual(5);
    expect(windowOf(retry, gaps.length - 1)).toBe(BACKOFF_CAP_MS);
    // No attempt without a delay before it: the down node saw exactly one attempt per announced delay.
    expect(attempts.length).toBe(gaps.length);
    console.log(`backoff: retry ${retry} ms, delays ${expected.join(", ")} ms, measured ${gaps.map((g) => g.toFixed(0)).join(", ")} ms`);
  });

  test("honours retry: the first reconnect waits the retry this stream received (RETRY_MS ±50%), not the client's default", async () => {
    const almostOne = 0.999; // draws the top of the first window: the delay is then the retry itself
    const clientDefaultMs = 10_000;
    const client = track(recorded(matchStreamUrl(entry.url, uniqueMatch("cretry")), { backoff: { initialMs: clientDefaultMs, random: () => almostOne } }));
    await client.untilState("open");
    await waitFor(async () => client.stream.retryMs !== undefined, 5_000, "retry");
    const retry = client.stream.retryMs!;
    expect(retry).toBeGreaterThanOrEqual(RETRY_MS * (1 - RETRY_JITTER));
    expect(retry).toBeLessThanOrEqual(RETRY_MS * (1 + RETRY_JITTER));

    const cutAt = performance.now();
    entry.cut();
    await client.untilState("open", 2, 5_000);
    const reconnecting = client.changes.find((c) => c.state === "reconnecting")!;
    expect(reconnecting.delayMs).toBe(Math.floor(almostOne * retry));
    const waited = entry.acceptsSince(cutAt)[0]! - cutAt;
    expect(waited).toBeGreaterThanOrEqual(Math.floor(almostOne * retry) - EARLINESS_MS);
    expect(waited).toBeLessThanOrEqual(retry + LATENESS_MS);
    console.log(`retry: received ${retry} ms, first reconnect after ${waited.toFixed(0)} ms`);

    // The jitter is per stream: several streams get several values, all within ±50%.
    const others = Array.from({ length: 6 }, () => track(recorded(matchStreamUrl(nodeA.url, uniqueMatch("cjit")))));
    await waitFor(async () => others.every((o) => o.stream.retryMs !== undefined), 5_000, "retries");
    const retries = others.map((o) => o.stream.retryMs!);
    for (const r of retries) {
      expect(r).toBeGreaterThanOrEqual(RETRY_MS * (1 - RETRY_JITTER));
      expect(r).toBeLessThanOrEqual(RETRY_MS * (1 + RETRY_JITTER));
    }
    expect(new Set(retries).size).toBeGreaterThan(1);
  });

  test("close() is clean: no request after it (open or while reconnecting), and the node's open-stream gauge returns to 0", async () => {
    await waitFor(async () => (await metricValue(nodeA.url, "touchline_streams_open")) === 0, 5_000, "no stream open before");
    const client = track(recorded(matchStreamUrl(entry.url, uniqueMatch("cclose"))));
    await client.untilState("open");
    await waitFor(async () => (await metricValue(nodeA.url, "touchline_streams_open")) === 1, 5_000, "the gauge to count the stream");
    const closedAt = performance.now();
    client.stream.close();
    await client.stream.done;
    expect(client.stream.state).toBe("closed");
    expect(client.stream.readyState).toBe(TouchlineStream.CLOSED);
    await waitFor(async () => (await metricValue(nodeA.url, "touchline_streams_open")) === 0, 2_000, "the gauge back to 0");
    // Longer than any backoff window: a reconnect would have happened by now.
    await Bun.sleep(BACKOFF_CAP_MS + LATENESS_MS);
    expect(entry.acceptsSince(closedAt)).toEqual([]);

    // Closed during a backoff sleep: the pending attempt never happens.
    entry.refusing = true;
    const sleeper = track(recorded(matchStreamUrl(entry.url, uniqueMatch("cclose2")), { backoff: { initialMs: 400, random: () => 0.9 } }));
    await sleeper.untilState("reconnecting");
    const sleepingSince = performance.now();
    sleeper.stream.close();
    await sleeper.stream.done;
    await Bun.sleep(600);
    expect(entry.acceptsSince(sleepingSince)).toEqual([]);
    expect(sleeper.changes.at(-1)!.state).toBe("closed");
  });

  test("typed events: snapshots, match events with their patch, and the node's hello", async () => {
    type Events = { goal: { team: "home" | "away"; player: string; minute: number } };
    type State = { homeScore?: number; minute?: number };
    const match = uniqueMatch("ctyped");
    await publishSurely(nodeB.url, match, { type: "kickoff", state: { homeScore: 0, minute: 0 } });
    const stream = new TouchlineStream<Events, State>(`${matchStreamUrl(nodeA.url, match)}?hello=1`);
    open.push(stream as unknown as TouchlineStream);
    const seen: string[] = [];
    const hello = new Promise<string>((resolve) => stream.on("touchline.hello", (e) => resolve((e.data as { node: string }).node)));
    const snapshot = new Promise<State>((resolve) => stream.on("snapshot", (e) => resolve(e.state)));
    const goal = new Promise<MatchEvent<"goal", Events["goal"]>>((resolve) =>
      stream.on("goal", (e) => {
        seen.push(`${e.data.player} ${e.data.minute}'`); // typed: data is Events["goal"]
        // @ts-expect-error -- `goal` data has no `points`: the event map types it
        void e.data.points;
        resolve(e);
      }),
    );
    expect(await hello).toBe(nodeA.nodeId);
    expect(await snapshot).toEqual({ homeScore: 0, minute: 0 });
    const id = await publishSurely(nodeB.url, match, { type: "goal", data: { team: "home", player: "Saka", minute: 23 }, state: { homeScore: 1, minute: 23 } });
    const e = await goal;
    expect([e.type, e.id, e.match, e.data, e.state]).toEqual(["goal", id, match, { team: "home", player: "Saka", minute: 23 }, { homeScore: 1, minute: 23 }]);
    expect(typeof e.ts).toBe("number");
    expect(stream.lastEventId).toBe(id); // the hello (no id line) did not move it
    expect(seen).toEqual(["Saka 23'"]);
  });
});

describe("client request headers (a recording SSE server)", () => {
  interface Seen {
    path: string;
    authorization: string | null;
    lastEventId: string | null;
    accept: string | null;
  }
  const seen: Seen[] = [];
  const encoder = new TextEncoder();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    fetch(req) {
      const url = new URL(req.url);
      seen.push({
        path: url.pathname,
        authorization: req.headers.get("authorization"),
        lastEventId: req.headers.get("last-event-id"),
        accept: req.headers.get("accept"),
      });
      if (url.pathname.endsWith("/poll")) return Response.json({ match: "m", events: [{ id: "3", type: "goal", data: null, ts: 1 }], next: "3" });
      const n = seen.filter((s) => !s.path.endsWith("/poll")).length;
      const event = `retry: 20\n\nid: ${n}\nevent: goal\ndata: {"match":"m","data":{"n":${n}},"ts":1}\n\n`;
      // The first connection ends after one event (the client must come back, resuming); the next stays open.
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode(event));
          if (n === 1) controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    },
  });
  const base = `http://127.0.0.1:${server.port}`;
  afterAll(() => server.stop(true));

  test("the stream sends Authorization on every connection, from a token function asked each time, with Last-Event-ID on the resume", async () => {
    let issued = 0;
    const ids: string[] = [];
    const stream = new TouchlineStream(matchStreamUrl(base, "m"), { token: () => `token-${++issued}`, headers: { "x-client": "test" }, onError: () => {} });
    stream.onAny((e) => ids.push(e.id));
    await waitFor(async () => ids.length >= 2, 5_000, "two events over two connections");
    stream.close();
    await stream.done;
    const streams = seen.filter((s) => s.path === "/matches/m/events");
    expect(streams.slice(0, 2)).toEqual([
      { path: "/matches/m/events", authorization: "Bearer token-1", lastEventId: null, accept: "text/event-stream" },
      { path: "/matches/m/events", authorization: "Bearer token-2", lastEventId: "1", accept: "text/event-stream" },
    ]);
    expect(ids).toEqual(["1", "2"]);
  });

  test("poll() sends Authorization too", async () => {
    const result = await poll(base, "m", { after: "2", token: "poll-token" });
    expect(seen.at(-1)).toEqual({ path: "/matches/m/poll", authorization: "Bearer poll-token", lastEventId: null, accept: "application/json" });
    expect(result.events.map((e) => e.id)).toEqual(["3"]);
  });
});
