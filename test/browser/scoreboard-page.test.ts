/**
 * The scoreboard page in real Chromium, against a small in-test server that speaks the HTTP contract
 * (DESIGN.md) for the routes the page uses. It exercises what only the page decides (rendering,
 * merge patches, the conventions, its own reconnects and what it sends when it re-opens) under
 * conditions a real cluster cannot produce on demand (a refused reconnect, a hello event).
 * End-to-end behaviour against real nodes is in scoreboard.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { formatCursor, parseCursor, type Cursor } from "../../src/match/cursor.ts";
import { formatEventId, logTag } from "../../src/match/event.ts";
import { applyStatePatch, type Json } from "../../src/match/mergePatch.ts";
import { encodeMessage, encodeRetry } from "../../src/sse/encode.ts";
import { connStates, launchBrowser, PHONE_VIEWPORT, recordConnStates, saveScreenshot, type BrowserSession } from "../helpers/browser.ts";
import { COMPOSITE_ID, cursorOf, tagOf } from "../helpers/eventIds.ts";

const WEB_DIR = resolve(import.meta.dir, "../../src/web");
const MAX_MATCHES = 64;
/** How fast a visible change must follow a publish. */
const UPDATE_BUDGET_MS = 1_000;
const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

interface StoredEvent {
  seq: number;
  type: string;
  data: Json;
  state?: Json;
  ts: number;
}
interface OpenStream {
  matches: string[];
  cursor: Cursor;
  controller: ReadableStreamDefaultController<Uint8Array>;
}

/** The routes of the contract the page uses, over one in-memory event log. */
class ContractServer {
  readonly nodeId = "page-test-node";
  /** The log's tag: every id this server issues ends `@<tag>` (DESIGN.md, "Event ids"). */
  readonly tag = logTag(new Date());
  readonly streamRequests: { matches: string[]; header: string | null; query: string | null; hello: string | null; refused: boolean }[] = [];
  refuseStreams = false;
  refuseList = false;
  helloOnOpen = false;
  private seq = 0;
  private readonly log = new Map<string, StoredEvent[]>();
  private readonly states = new Map<string, Record<string, Json>>();
  private readonly streams = new Set<OpenStream>();
  private readonly encoder = new TextEncoder();
  private readonly server = Bun.serve({ port: 0, idleTimeout: 0, fetch: (req) => this.route(req) });

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  publish(match: string, type: string, data: Json, state?: Json): void {
    const event: StoredEvent = { seq: ++this.seq, type, data, ts: Date.now() };
    if (state !== undefined) event.state = state;
    this.log.set(match, [...(this.log.get(match) ?? []), event]);
    this.states.set(match, applyStatePatch(this.states.get(match) ?? {}, state));
    for (const s of this.streams) if (s.matches.includes(match)) this.send(s, match, event);
  }

  /** Ends every open stream, as a dying node would. */
  dropStreams(): void {
    for (const s of this.streams) s.controller.close();
    this.streams.clear();
  }

  stop(): void {
    this.dropStreams();
    this.server.stop(true);
  }

  private send(s: OpenStream, match: string, e: StoredEvent): void {
    s.cursor.set(match, e.seq);
    const payload: Record<string, Json> = { match, data: e.data, ts: e.ts };
    if (e.state !== undefined) payload.state = e.state;
    s.controller.enqueue(this.encoder.encode(encodeMessage({ id: formatCursor(s.cursor, this.tag), event: e.type, data: JSON.stringify(payload) })));
  }

  private async route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/") return this.file("index.html");
    if (url.pathname.startsWith("/web/")) return this.file(url.pathname.slice("/web/".length));
    if (url.pathname === "/cluster") return Response.json({ node: this.nodeId, nodes: [{ id: this.nodeId }] });
    if (url.pathname === "/matches") {
      if (this.refuseList) return Response.json({ error: "not_ready", message: "retry" }, { status: 503, headers: { "retry-after": "1" } });
      const limit = Number(url.searchParams.get("limit") ?? 100);
      const byRecent = [...this.log.entries()].sort((a, b) => b[1].at(-1)!.seq - a[1].at(-1)!.seq).slice(0, limit);
      const matches = byRecent.map(([match, events]) => ({ match, id: formatEventId(events.at(-1)!.seq, this.tag), state: this.states.get(match) ?? {} }));
      return Response.json({ matches, next: null });
    }
    if (url.pathname === "/events") return this.stream(req, url);
    return Response.json({ error: "not_found", message: "no such route" }, { status: 404 });
  }

  private async file(name: string): Promise<Response> {
    const file = Bun.file(resolve(WEB_DIR, name));
    if (name.includes("..") || !(await file.exists())) return new Response("not found", { status: 404 });
    return new Response(file, { headers: { "content-type": CONTENT_TYPES[name.split(".").pop()!] ?? "application/octet-stream" } });
  }

  private stream(req: Request, url: URL): Response {
    const matches = url.searchParams.getAll("match").slice(0, MAX_MATCHES);
    const header = req.headers.get("last-event-id");
    const query = url.searchParams.get("lastEventId");
    const hello = url.searchParams.get("hello");
    this.streamRequests.push({ matches, header, query, hello, refused: this.refuseStreams });
    if (this.refuseStreams) return Response.json({ error: "unavailable", message: "retry later" }, { status: 503 });
    const resumeFrom = parseCursor(header ?? query, MAX_MATCHES, this.tag);
    let open: OpenStream;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        open = { matches, cursor: new Map(), controller };
        controller.enqueue(this.encoder.encode(encodeRetry(200)));
        // Opt-in, as on a real node: only a stream that asked with hello=1 is greeted.
        if (this.helloOnOpen && hello === "1")
          controller.enqueue(this.encoder.encode(encodeMessage({ event: "touchline.hello", data: JSON.stringify({ node: "hello-node" }) })));
        for (const match of matches) {
          const events = this.log.get(match) ?? [];
          const after = resumeFrom.get(match);
          if (after === undefined) {
            open.cursor.set(match, events.at(-1)?.seq ?? 0);
            const data = JSON.stringify({ match, state: this.states.get(match) ?? {} });
            controller.enqueue(this.encoder.encode(encodeMessage({ id: formatCursor(open.cursor, this.tag), event: "snapshot", data })));
          } else {
            open.cursor.set(match, after);
            for (const e of events) if (e.seq > after) this.send(open, match, e);
          }
        }
        this.streams.add(open);
      },
      cancel: () => void this.streams.delete(open),
    });
    return new Response(body, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache, no-transform" } });
  }
}

const kickoff = (home: string, away: string) => ({ home, away, homeScore: 0, awayScore: 0, minute: 0, status: "live" });

let server: ContractServer;
let session: BrowserSession | undefined;

beforeAll(() => {
  server = new ContractServer();
  server.publish("ars-che", "kickoff", { minute: 0, text: "Arsenal v Chelsea is under way" }, kickoff("Arsenal", "Chelsea"));
  server.publish("liv-eve", "kickoff", { minute: 0, text: "Liverpool v Everton is under way" }, kickoff("Liverpool", "Everton"));
  server.publish("liv-eve", "goal", { team: "away", player: "Calvert-Lewin", minute: 12 }, { awayScore: 1, minute: 12 });
  server.publish("tot-whu", "fulltime", { minute: 90 }, { home: "Spurs", away: "West Ham", homeScore: 2, awayScore: 2, minute: 90, status: "full-time" });
});

afterEach(async () => {
  await session?.close();
  session = undefined;
  server.refuseStreams = false;
  server.refuseList = false;
  server.helloOnOpen = false;
});

afterAll(() => server.stop());

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await Bun.sleep(20);
  }
}

/** A composite id of this server's log, in the exact form, that names `match`. */
function expectCompositeNaming(id: string | null, match: string): void {
  expect(id).toMatch(COMPOSITE_ID);
  expect(cursorOf(id!).has(match)).toBe(true);
  expect(tagOf(id!)).toBe(server.tag);
}

const row = (match: string) => `[data-match="${match}"]`;
const cell = (match: string, testid: string) => `.matches ${row(match)} [data-testid="${testid}"]`;

async function open(viewport?: { width: number; height: number }, query = "") {
  session = await launchBrowser(viewport ? { viewport } : {});
  const page = session.page;
  await recordConnStates(page);
  await page.goto(`${server.url}/${query}`);
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
  return page;
}

describe("scoreboard page (contract server)", () => {
  test("shows every listed match from its snapshot, live ones apart, at phone width with no external request", async () => {
    session = await launchBrowser({ viewport: PHONE_VIEWPORT });
    const page = session.page;
    const foreign: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(server.url)) foreign.push(r.url());
    });
    await page.goto(server.url);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');

    expect(await page.textContent(cell("liv-eve", "home-team"))).toBe("Liverpool");
    expect(await page.textContent(cell("liv-eve", "home-score"))).toBe("0");
    expect(await page.textContent(cell("liv-eve", "away-score"))).toBe("1");
    expect(await page.textContent(cell("liv-eve", "minute"))).toBe("12'");
    expect(await page.locator(`[data-testid="live-matches"] ${row("ars-che")}`).count()).toBe(1);
    expect(await page.locator(`[data-testid="other-matches"] ${row("tot-whu")}`).count()).toBe(1);
    expect(await page.textContent('[data-testid="node"]')).toBe(server.nodeId);
    expect(await page.textContent('[data-testid="match-count"]')).toBe("3");
    // Nothing wider than the phone: no sideways scrolling.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE_VIEWPORT.width);
    expect(foreign).toEqual([]);
    expect(server.openStreams).toBe(1);
    // One stream for all matches, first opened without an id (snapshots).
    const first = server.streamRequests.at(-1)!;
    expect([...first.matches].sort()).toEqual(["ars-che", "liv-eve", "tot-whu"]);
    expect([first.header, first.query]).toEqual([null, null]);
    await saveScreenshot(page, "page-phone");
  });

  test("applies a published merge patch and adds it to the feed within a second", async () => {
    const page = await open();
    const publishedAt = Date.now();
    server.publish("ars-che", "goal", { team: "home", player: "Saka", minute: 23, text: "Saka curls it in" }, { homeScore: 1, minute: 23 });
    await page.waitForSelector(`${cell("ars-che", "home-score")}:text-is("1")`, { timeout: UPDATE_BUDGET_MS });
    expect(Date.now() - publishedAt).toBeLessThan(UPDATE_BUDGET_MS);
    expect(await page.textContent(cell("ars-che", "minute"))).toBe("23'");
    const item = page.locator('[data-testid="feed"] li').first();
    expect(await item.getAttribute("data-match")).toBe("ars-che");
    expect(await item.getAttribute("data-type")).toBe("goal");
    expectCompositeNaming(await item.getAttribute("data-event-id"), "ars-che");
    expect(await item.textContent()).toContain("Saka curls it in");
    await saveScreenshot(page, "page-desktop-after-goal");
  });

  test("without a patch, applies the football convention (a goal scores, full-time moves the match)", async () => {
    const page = await open();
    const before = Number(await page.textContent(cell("liv-eve", "home-score")));
    server.publish("liv-eve", "goal", { team: "home", player: "Salah", minute: 30 });
    await page.waitForSelector(`${cell("liv-eve", "home-score")}:text-is("${before + 1}")`, { timeout: UPDATE_BUDGET_MS });
    server.publish("liv-eve", "fulltime", { minute: 90 });
    await page.waitForSelector(`[data-testid="other-matches"] ${row("liv-eve")}[data-status="full-time"]`, { timeout: UPDATE_BUDGET_MS });
    // Put the server's state back in line with the page for the following tests.
    server.publish("liv-eve", "restart", null, { homeScore: before + 1, status: "live", minute: 90 });
  });

  test("after a lost stream shows reconnecting, then resumed, and every event published meanwhile once", async () => {
    const page = await open();
    const requestsBefore = server.streamRequests.length;
    server.refuseStreams = true; // the reconnect meets a 503 first, which EventSource alone never retries
    server.dropStreams();
    await page.waitForSelector('[data-testid="conn-state"][data-state="reconnecting"]');
    const during = ["first", "second", "third"].map((word) => `Outage event ${word}`);
    for (const [i, text] of during.entries()) server.publish("ars-che", "card", { team: "away", minute: 40 + i, text });
    await waitUntil(() => server.streamRequests.slice(requestsBefore).some((r) => r.refused), 5_000);
    server.refuseStreams = false;
    await page.waitForSelector('[data-testid="conn-state"][data-state="resumed"]', { timeout: 10_000 });
    for (const text of during) await page.waitForSelector(`[data-testid="feed"] li:has-text("${text}")`, { timeout: UPDATE_BUDGET_MS });

    const feedTexts = await page.locator('[data-testid="feed"] li .text').allTextContents();
    for (const text of during) expect(feedTexts.filter((t) => t === text)).toHaveLength(1);
    expect(await connStates(page)).toEqual(["connecting", "live", "reconnecting", "resumed"]);
    // Every reconnect asked to resume from the last id it saw, never for snapshots.
    const reconnects = server.streamRequests.slice(requestsBefore);
    expect(reconnects.filter((r) => r.refused).length).toBeGreaterThanOrEqual(1);
    expect(reconnects.at(-1)!.refused).toBe(false);
    for (const r of reconnects) expectCompositeNaming(r.query, "ars-che");
    await saveScreenshot(page, "page-resumed");
  });

  test("a new match is added on the next list refresh, on one re-opened stream that resumes the others", async () => {
    const page = await open(undefined, "?refresh=1");
    const feedBefore = await page.locator('[data-testid="feed"] li').count();
    const requestsBefore = server.streamRequests.length;
    server.publish("new-one", "kickoff", { minute: 0, text: "New match under way" }, kickoff("Leeds", "Burnley"));
    await page.waitForSelector(`${cell("new-one", "home-team")}:text-is("Leeds")`, { timeout: 5_000 });
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="feed"] li').length >= n, feedBefore, { timeout: 2_000 }).catch(() => {});
    const reopen = server.streamRequests.slice(requestsBefore).find((r) => r.matches.includes("new-one"));
    expect(reopen).toBeDefined();
    expect(reopen!.matches).toContain("ars-che");
    expectCompositeNaming(reopen!.query, "ars-che");
    // The re-opened stream resumes the old matches: nothing replayed into the feed twice.
    const ids = await page.locator('[data-testid="feed"] li').evaluateAll((items) => items.map((i) => i.textContent));
    expect(new Set(ids).size).toBe(ids.length);
    expect(await page.getAttribute('[data-testid="conn-state"]', "data-state")).toBe("live");
  });

  test("a node not ready at first load is asked again within seconds, not after a whole refresh period", async () => {
    server.refuseList = true;
    session = await launchBrowser();
    const page = session.page;
    await page.goto(server.url);
    await Bun.sleep(300);
    expect(await page.getAttribute('[data-testid="conn-state"]', "data-state")).toBe("connecting");
    server.refuseList = false;
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 5_000 });
  });

  test("names the node from the stream's hello when the server sends one", async () => {
    server.helloOnOpen = true;
    const page = await open();
    await page.waitForSelector('[data-testid="node"][data-source="stream"]');
    expect(await page.textContent('[data-testid="node"]')).toBe("hello-node");
    expect(server.streamRequests.at(-1)!.hello).toBe("1");
  });

  test("follows at most 64 matches, the most recently active, on one stream", async () => {
    for (let i = 0; i < MAX_MATCHES + 6; i++) server.publish(`bulk-${i}`, "kickoff", { minute: 0 }, kickoff(`Home ${i}`, `Away ${i}`));
    const page = await open();
    expect(await page.locator(".matches [data-match]").count()).toBe(MAX_MATCHES);
    expect(await page.textContent('[data-testid="match-count"]')).toBe(String(MAX_MATCHES));
    const last = server.streamRequests.at(-1)!;
    expect(last.matches).toHaveLength(MAX_MATCHES);
    expect(last.matches).toContain(`bulk-${MAX_MATCHES + 5}`);
    expect(last.matches).not.toContain("bulk-0");
    expect(server.openStreams).toBe(1);
  });

  test("is accessible: language, landmarks, a polite live feed and a status for the connection", async () => {
    const page = await open();
    expect(await page.getAttribute("html", "lang")).toBe("en");
    expect(await page.locator("header, main, footer").count()).toBe(3);
    expect(await page.getAttribute('[data-testid="feed"]', "aria-live")).toBe("polite");
    expect(await page.locator('[role="status"] [data-testid="conn-state"]').count()).toBe(1);
    for (const id of await page.locator("section").evaluateAll((s) => s.map((x) => x.getAttribute("aria-labelledby")))) {
      expect(await page.locator(`#${id}`).count()).toBe(1);
    }
  });
});
