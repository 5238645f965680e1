/**
 * Touchline behind Debian's nginx, configured by the repository's example (cluster/nginx/touchline.conf,
 * see test/helpers/nginx.ts), in front of a real node with HEARTBEAT_MS=1000:
 * - the first event (the snapshot) and every published event arrive through nginx as soon as directly
 *   (arrival measured against publish time on a direct stream and a proxied one side by side), and each
 *   `: ping` passes at its own time: nothing is buffered;
 * - a control run of the same file with buffering forced back on holds them back, so the measurement
 *   can tell;
 * - streams are never compressed, though the http context gzips every type; JSON comes compressed by
 *   the node and 304s pass;
 * - resuming through nginx is exact, for one match and for a multiplexed stream of 64 long match ids
 *   (a Last-Event-ID of several KB);
 * - publishes and a full batch go through;
 * - a client that stops reading is cut by the node through nginx: its backpressure reaches the node
 *   (invariant 6 holds behind the proxy).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import http from "node:http";
import { constants as zlibConstants, gunzipSync } from "node:zlib";
import { useNode } from "../helpers/nodeFixture.ts";
import { waitFor } from "../helpers/cluster.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { rawGet } from "../helpers/rawHttp.ts";
import { startNginx, type NginxFixture } from "../helpers/nginx.ts";
import { metricValue, publishOk, uniqueMatch } from "./touchlineApi.ts";

setDefaultTimeout(30_000);

const HEARTBEAT_MS = 1000;
/** A proxied event may trail the direct one by scheduling noise, never by a buffer's wait. */
const MAX_EXTRA_MS = 100;
const { node } = useNode({ env: { HEARTBEAT_MS: String(HEARTBEAT_MS) } });
let proxy: NginxFixture;

beforeAll(async () => {
  proxy = await startNginx([`127.0.0.1:${node.port}`]);
});
afterAll(async () => {
  await proxy?.stop();
});

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;

function eventsOf(s: SseConnection, type: string) {
  return s.events.filter((e) => e.type === type);
}

describe("events and pings pass unbuffered", () => {
  test("the first event and each published event arrive through nginx as soon as directly", async () => {
    const match = uniqueMatch("ngx");
    await publishOk(node.url, match, { type: "kickoff", state: { homeScore: 0 } });
    const opened = Date.now();
    const via = await openSse(`${proxy.url}/matches/${match}/events`, { headers: { "accept-encoding": "gzip, deflate, br" } });
    const direct = await openSse(`${node.url}/matches/${match}/events`);
    await via.untilEvents(1, 2000);
    const firstMs = via.events[0]!.receivedAt - opened;
    expect(via.events[0]!.type).toBe("snapshot");
    expect(firstMs).toBeLessThan(500);
    await direct.untilEvents(1);

    const viaLag: number[] = [];
    const extra: number[] = [];
    for (let i = 1; i <= 8; i++) {
      const sent = Date.now();
      await publishOk(node.url, match, { type: "goal", data: { n: i } });
      await via.until(() => eventsOf(via, "goal").length >= i, 2000, `goal ${i} through nginx`);
      await direct.until(() => eventsOf(direct, "goal").length >= i, 2000, `goal ${i} directly`);
      const v = eventsOf(via, "goal")[i - 1]!;
      const d = eventsOf(direct, "goal")[i - 1]!;
      expect(v.lastEventId).toBe(d.lastEventId);
      viaLag.push(v.receivedAt - sent);
      extra.push(v.receivedAt - d.receivedAt);
      await Bun.sleep(50);
    }
    console.log(
      `NGINX first event ${firstMs} ms after connecting; publish to arrival through nginx median ${median(viaLag)} ms, max ${Math.max(...viaLag)} ms; behind the direct stream at most ${Math.max(...extra)} ms`,
    );
    expect(Math.max(...viaLag)).toBeLessThan(500);
    expect(Math.max(...extra)).toBeLessThan(MAX_EXTRA_MS);
    expect(via.headers.get("content-encoding")).toBeNull();
    await via.close();
    await direct.close();
  });

  test("each ping arrives at its time (one every HEARTBEAT_MS while nothing else is written)", async () => {
    const match = uniqueMatch("ngxp");
    await publishOk(node.url, match, { type: "kickoff" });
    const via = await openSse(`${proxy.url}/matches/${match}/events`);
    await via.untilEvents(1);
    const snapshotAt = via.events[0]!.receivedAt;
    await via.until(() => via.comments.length >= 4, 4.5 * HEARTBEAT_MS + 2000, "4 pings through nginx");
    expect(via.comments.slice(0, 4)).toEqual(["ping", "ping", "ping", "ping"]);
    const times = [snapshotAt, ...via.commentTimes.slice(0, 4)];
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    console.log(`NGINX pings through nginx ${gaps.join(", ")} ms apart (HEARTBEAT_MS ${HEARTBEAT_MS})`);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThan(HEARTBEAT_MS * 0.7);
      expect(gap).toBeLessThan(HEARTBEAT_MS * 1.6);
    }
    // A named ping (?heartbeat=1) is an event: it passes at its time too.
    const named = await openSse(`${proxy.url}/matches/${match}/events?heartbeat=1`);
    await named.untilEvents(1);
    const t = named.events[0]!.receivedAt;
    await named.until(() => eventsOf(named, "touchline.ping").length >= 1, 2 * HEARTBEAT_MS + 1000, "a touchline.ping");
    expect(eventsOf(named, "touchline.ping")[0]!.receivedAt - t).toBeLessThan(HEARTBEAT_MS * 1.6);
    await via.close();
    await named.close();
  });

  test("control: with the stream location's buffering and gzip lines undone, nginx holds every event back, so the measurement can tell", async () => {
    // gzip on (the http context's), buffering on, the node's X-Accel-Buffering ignored.
    const undo = (conf: string) =>
      conf.replace(/^\s*gzip off;\n/m, "").replace("proxy_buffering off;", "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;");
    const gzipped = await startNginx([`127.0.0.1:${node.port}`], { edit: undo });
    try {
      expect(gzipped.config).not.toContain("gzip off;");
      const match = uniqueMatch("ngxc");
      await publishOk(node.url, match, { type: "kickoff" });
      // Read as a browser would, decoding what has come so far (a gzip stream cut short decodes up to its
      // last complete block).
      const raw: Buffer[] = [];
      let encoding: string | undefined;
      const req = http.get(`${gzipped.url}/matches/${match}/events`, { headers: { "accept-encoding": "gzip" }, agent: false }, (res) => {
        encoding = res.headers["content-encoding"];
        res.on("data", (c: Buffer) => raw.push(c));
      });
      req.on("error", () => {});
      await Bun.sleep(300);
      for (let i = 0; i < 3; i++) await publishOk(node.url, match, { type: "goal", data: { i } });
      await Bun.sleep(2.5 * HEARTBEAT_MS);
      req.destroy();
      const body = Buffer.concat(raw);
      const decoded = encoding === "gzip" && body.byteLength > 0 ? gunzipSync(body, { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString() : body.toString();
      console.log(
        `NGINX control (buffering and gzip on): after 2.5 s the client has ${encoding === undefined ? "no response head" : `${body.byteLength} bytes (${encoding ?? "identity"})`}`,
      );
      // Held back: none of the 3 goals (nor, in 2.5 s, a ping) reached the client.
      expect(decoded.match(/^event: goal$/gm) ?? []).toHaveLength(0);
      expect(decoded).not.toContain(": ping");
    } finally {
      await gzipped.stop();
    }
  });
});

describe("compression and caching through nginx", () => {
  test("a stream stays uncompressed although the http context gzips every type", async () => {
    const match = uniqueMatch("ngxz");
    await publishOk(node.url, match, { type: "kickoff" });
    for (const path of [`/matches/${match}/events`, `/events?match=${match}`]) {
      const s = await openSse(`${proxy.url}${path}`, { headers: { "accept-encoding": "gzip" } });
      expect(s.status).toBe(200);
      expect(s.headers.get("content-encoding")).toBeNull();
      expect(s.headers.get("content-type")).toStartWith("text/event-stream");
      await s.untilEvents(1);
      await s.close();
    }
  });

  test("JSON comes compressed by the node, decodes, and a matching If-None-Match is a 304", async () => {
    let last = "";
    for (let i = 0; i < 30; i++) {
      last = uniqueMatch("ngxl");
      await publishOk(node.url, last, { type: "kickoff", state: { home: "Arsenal", away: "Chelsea", homeScore: 0, awayScore: 0 } });
    }
    const url = `${proxy.url}/matches?limit=100`;
    // The listing follows the owner's apply, a moment after the 201.
    await waitFor(async () => (await rawGet(url)).body.toString().includes(last), 5000, "the listing to name the last match");
    const plain = await rawGet(url);
    const gz = await rawGet(url, { "accept-encoding": "gzip" });
    expect(gz.status).toBe(200);
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gz.headers.vary).toContain("Accept-Encoding");
    expect(gunzipSync(gz.body).toString()).toBe(plain.body.toString());
    expect(gz.headers["cache-control"]).toBe(plain.headers["cache-control"]!);
    const again = await rawGet(url, { "accept-encoding": "gzip", "if-none-match": gz.headers.etag! });
    expect(again.status).toBe(304);
  });
});

describe("resume through nginx", () => {
  test("a single-match stream resumes exactly after a disconnect", async () => {
    const match = uniqueMatch("ngxr");
    await publishOk(node.url, match, { type: "kickoff" });
    const first = await openSse(`${proxy.url}/matches/${match}/events`);
    await first.untilEvents(1);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await publishOk(node.url, match, { type: "goal", data: { n: i } }));
    await first.untilEvents(11);
    expect(first.matchEvents.map((e) => e.lastEventId)).toEqual(ids);
    const last = first.lastEventId;
    await first.close();
    const missed: string[] = [];
    for (let i = 10; i < 20; i++) missed.push(await publishOk(node.url, match, { type: "goal", data: { n: i } }));
    const again = await openSse(`${proxy.url}/matches/${match}/events`, { headers: { "last-event-id": last } });
    await again.untilEvents(10);
    const live = await publishOk(node.url, match, { type: "fulltime" });
    await again.untilEvents(11);
    expect(again.snapshots).toHaveLength(0);
    expect(again.events.map((e) => e.lastEventId)).toEqual([...missed, live]);
    expect(again.events.slice(0, 10).map((e) => JSON.parse(e.data).data.n)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    await again.close();
  });

  test("a multiplexed stream of 64 long match ids resumes exactly with its several-KB composite id", async () => {
    const matches = Array.from({ length: 64 }, (_, i) => `${String(i).padStart(2, "0")}-${"x".repeat(61)}`);
    const batch = (tag: string) => matches.map((match) => ({ match, type: "minute", data: { tag } }));
    const publishBatch = async (tag: string): Promise<string[]> => {
      const res = await fetch(`${proxy.url}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(batch(tag)) });
      expect(res.status).toBe(201);
      return ((await res.json()) as { results: { id: string }[] }).results.map((r) => r.id);
    };
    await publishBatch("before");
    const url = `${proxy.url}/events?${matches.map((m) => `match=${m}`).join("&")}`;
    const first = await openSse(url);
    await first.untilEvents(64);
    await publishBatch("seen");
    await first.untilEvents(128);
    const last = first.lastEventId;
    expect(last.length).toBeGreaterThan(4000);
    await first.close();
    const missed = await publishBatch("missed");
    const again = await openSse(url, { headers: { "last-event-id": last } });
    expect(again.status).toBe(200);
    await again.untilEvents(64);
    await Bun.sleep(200);
    expect(again.snapshots).toHaveLength(0);
    expect(again.events).toHaveLength(64);
    // Exactly the missed event of every match, once (the stream's ids are composite; compare per match).
    const got = again.events.map((e) => [JSON.parse(e.data).match, JSON.parse(e.data).data.tag]);
    expect(got.map(([m]) => m).sort()).toEqual([...matches].sort());
    expect(got.every(([, tag]) => tag === "missed")).toBe(true);
    expect(missed).toHaveLength(64);
    await again.close();
  });
});

test("publishes and a full batch go through nginx; an oversized one gets the node's JSON 413", async () => {
  const match = uniqueMatch("ngxb");
  const post = (path: string, body: string) => fetch(`${proxy.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
  expect((await post(`/matches/${match}/events`, JSON.stringify({ type: "kickoff" }))).status).toBe(201);
  // 1,000 items of about 1 KB: just under BATCH_MAX_BYTES (1 MiB).
  const items = (n: number) => Array.from({ length: n }, (_, i) => ({ match, type: "minute", data: { i, text: "y".repeat(950) } }));
  const full = JSON.stringify(items(1000));
  expect(full.length).toBeGreaterThan(1_000_000);
  expect(full.length).toBeLessThan(1_048_576);
  const res = await post("/events", full);
  expect(res.status).toBe(201);
  expect(((await res.json()) as { results: unknown[] }).results).toHaveLength(1000);
  const over = await post("/events", JSON.stringify(items(1000).concat(items(100))));
  expect(over.status).toBe(413);
  expect(((await over.json()) as { error: string }).error).toBe("too_large");
  expect(proxy.errorLog()).not.toContain("[error]");
});

describe("a client that stops reading, through nginx", () => {
  const CLIENT_BUFFER_BYTES = 65_536;
  const { node: slowNode } = useNode({ env: { CLIENT_BUFFER_BYTES: String(CLIENT_BUFFER_BYTES), SLOW_CLIENT_GRACE: "200ms" } });
  /** About 1 KB per event; 24 MB in all, well past the kernel buffers of two loopback hops. */
  const TEXT = "Touchline through nginx: a line of commentary repeated to make each event about one kilobyte. ".repeat(10);
  const BATCHES = 24;
  const PER_BATCH = 900;

  async function flood(match: string): Promise<void> {
    for (let b = 0; b < BATCHES; b++) {
      const items = Array.from({ length: PER_BATCH }, (_, i) => ({ match, type: "comment", data: { b, i, text: TEXT } }));
      const res = await fetch(`${slowNode.url}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(items) });
      expect(res.status).toBe(201);
    }
  }

  async function slowClientCut(): Promise<number> {
    const p = await startNginx([`127.0.0.1:${slowNode.port}`]);
    try {
      const match = uniqueMatch("ngxs");
      await publishOk(slowNode.url, match, { type: "kickoff" });
      const before = await metricValue(slowNode.url, "touchline_slow_clients_cut_total");
      const slow = await openSse(`${p.url}/matches/${match}/events`);
      await slow.untilEvents(1);
      slow.pause();
      await flood(match);
      await Bun.sleep(1000);
      const cut = (await metricValue(slowNode.url, "touchline_slow_clients_cut_total")) - before;
      slow.destroy();
      return cut;
    } finally {
      await p.stop();
    }
  }

  test("with the example, the node sees the backpressure and cuts the stream (it resumes by id)", async () => {
    expect(await slowClientCut()).toBe(1);
  });
});
