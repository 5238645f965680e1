/**
 * The scoreboard page notices a dead connection and lets go of a hidden tab, in real Chromium against
 * a real node (real NATS JetStream), with heartbeats every HEARTBEAT_MS = 500 ms:
 *
 * - Watchdog: the page's stream goes through a TCP proxy that is black-holed (sockets stay open, no byte
 *   crosses), so the connection dies without closing. The page learns the heartbeat from the spacing of
 *   the `touchline.ping` events it gets, shows "reconnecting" after about three heartbeats of silence,
 *   and once the link heals has every event published meanwhile exactly once.
 * - Hidden tab: Chromium's headless tabs stay "visible" (minimising the window or bringing another tab
 *   to the front changes nothing, and Page.setWebLifecycleState does not fire visibilitychange), so the
 *   test overrides `document.visibilityState`/`document.hidden` and dispatches `visibilitychange`, which is
 *   exactly what the page listens to. `?hiddenPause=1.5` makes the 30 s hidden period 1.5 s. While paused
 *   the node holds no stream of the page and the page makes no request at all; back in view it resumes
 *   from its last id with every event published meanwhile exactly once.
 * - Refusal: a node at MAX_CONNECTIONS refuses the page's resume (`touchline.refused`); the page says
 *   "server busy, retrying", never "reconnecting", and its EventSource comes back by itself after the
 *   `retry:` with the same URL (the last id), delivering every event exactly once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Page, Request } from "playwright-core";
import { startNats, startNode, waitFor, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { connStates, launchBrowser, recordConnStates, saveScreenshot, type BrowserSession } from "../helpers/browser.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/faultProxy.ts";
import { kickoff, publishRetrying, type PublishBody } from "../helpers/scoreboardEvents.ts";

const HEARTBEAT_MS = 500;
const MISSED_BEATS = 3;
/** Timer lateness allowed on a loaded machine (setTimeout in Chromium, the page's MutationObserver). */
const TIMER_SLACK_MS = 750;
const UPDATE_BUDGET_MS = 1_000;
const TEST_TIMEOUT_MS = 90_000;

const card = (minute: number, text: string): PublishBody => ({ type: "card", data: { team: "away", minute, text }, state: { minute } });

/** Every request the page makes, with when it was made (ms, this machine's clock). */
function recordRequests(page: Page): { at: number; url: URL; type: string }[] {
  const seen: { at: number; url: URL; type: string }[] = [];
  page.on("request", (r: Request) => seen.push({ at: Date.now(), url: new URL(r.url()), type: r.resourceType() }));
  return seen;
}

/**
 * Call before page.goto(). Records when each connection state began (window.__connAt, Date.now()), and
 * when the page last heard anything on an EventSource (window.__lastHeard): every listener the page adds
 * is wrapped, so each event, snapshot and ping of every type the page listens to counts.
 */
async function instrument(page: Page): Promise<void> {
  await recordConnStates(page);
  await page.addInitScript(() => {
    const w = window as unknown as { __connAt: { state: string; at: number }[]; __lastHeard: number };
    w.__connAt = [];
    w.__lastHeard = 0;
    const add = EventSource.prototype.addEventListener;
    EventSource.prototype.addEventListener = function (this: EventSource, type: string, listener: unknown, options?: unknown) {
      const wrapped = (e: Event) => {
        w.__lastHeard = Date.now();
        return (listener as (e: Event) => unknown).call(this, e);
      };
      return add.call(this, type, wrapped, options as AddEventListenerOptions);
    } as typeof EventSource.prototype.addEventListener;
    document.addEventListener("DOMContentLoaded", () => {
      const label = document.querySelector('[data-testid="conn-state"]')!;
      const note = () => w.__connAt.push({ state: label.getAttribute("data-state") ?? "", at: Date.now() });
      note();
      new MutationObserver(note).observe(label, { attributes: true, attributeFilter: ["data-state"] });
    });
  });
}

async function connAt(page: Page): Promise<{ state: string; at: number }[]> {
  return page.evaluate(() => (window as unknown as { __connAt: { state: string; at: number }[] }).__connAt);
}

/** The heartbeat the page assumes now (it learns it from the pings' spacing). */
async function assumedHeartbeat(page: Page): Promise<number> {
  return Number(await page.getAttribute('[data-testid="conn-state"]', "data-heartbeat-ms"));
}

/** What a real tab does when it goes to the background or comes back, as far as the page can tell. */
async function setVisibility(page: Page, state: "hidden" | "visible"): Promise<void> {
  await page.evaluate((s) => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => s });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => s === "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
  }, state);
}

const stateIs = (state: string) => `[data-testid="conn-state"][data-state="${state}"]`;
const feedItem = (text: string) => `[data-testid="feed"] li:has-text("${text}")`;

/** Feed texts and event ids, to count each event. */
async function feed(page: Page): Promise<{ texts: string[]; ids: string[] }> {
  const texts = await page.locator('[data-testid="feed"] li .text').allTextContents();
  const ids = await page.locator('[data-testid="feed"] li').evaluateAll((items) => items.map((i) => i.getAttribute("data-event-id") ?? ""));
  return { texts, ids };
}

async function expectEachOnce(page: Page, texts: string[]): Promise<void> {
  const shown = await feed(page);
  for (const text of texts) expect({ text, times: shown.texts.filter((t) => t === text).length }).toEqual({ text, times: 1 });
  expect(new Set(shown.ids).size).toBe(shown.ids.length);
}

/** Reads a body to its end (or its abort), dropping what comes. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  try {
    while (!(await reader.read()).done) {}
  } catch {
    // aborted: the hold is over
  }
}

async function streamsOn(node: NodeFixture): Promise<number> {
  return ((await (await fetch(`${node.url}/cluster`)).json()) as { streams: number }).streams;
}

const isStream = (r: { url: URL }) => r.url.pathname === "/events";
const isPoll = (r: { url: URL }) => r.url.pathname === "/matches";

describe("scoreboard liveness on a real node", () => {
  let nats: NatsFixture;
  let node: NodeFixture;

  beforeAll(async () => {
    nats = await startNats();
    node = await startNode({ natsUrl: nats.url, env: { HEARTBEAT_MS: String(HEARTBEAT_MS) } });
    await publishRetrying(node.url, "lee-bur", kickoff("Leeds", "Burnley"));
    await publishRetrying(node.url, "ful-bre", kickoff("Fulham", "Brentford"));
  }, 60_000);

  afterAll(async () => {
    await node?.kill();
    await nats?.stop();
  });

  test(
    "a connection that dies without closing is noticed after about three heartbeats and resumed exactly once healed",
    async () => {
      const proxy: FaultProxy = startFaultProxy({ target: { host: "127.0.0.1", port: node.port } });
      const session: BrowserSession = await launchBrowser();
      try {
        const page = session.page;
        await instrument(page);
        const requests = recordRequests(page);
        await page.goto(`http://127.0.0.1:${proxy.port}/`);
        await page.waitForSelector(stateIs("live"));
        // The page assumes 15 s until the pings teach it the node's interval.
        await page.waitForFunction(() => Number(document.querySelector('[data-testid="conn-state"]')!.getAttribute("data-heartbeat-ms")) < 2_000, null, {
          timeout: 10_000,
        });
        await publishRetrying(node.url, "lee-bur", card(10, "before the stall"));
        await page.waitForSelector(feedItem("before the stall"), { timeout: UPDATE_BUDGET_MS });
        const lastIdBeforeStall = (await feed(page)).ids[0]!;

        // A quiet match on a live connection (pings only) is not mistaken for a dead one.
        await Bun.sleep(8 * HEARTBEAT_MS);
        expect(await connStates(page)).toEqual(["connecting", "live"]);
        expect(requests.filter(isStream)).toHaveLength(1);
        const heartbeat = await assumedHeartbeat(page);
        expect(heartbeat).toBeGreaterThanOrEqual(HEARTBEAT_MS * 0.9);
        expect(heartbeat).toBeLessThan(HEARTBEAT_MS * 2);

        // The link goes dead; the sockets stay open.
        proxy.blackhole();
        const stalledAt = Date.now();
        const during: string[] = [];
        for (const [i, match] of ["lee-bur", "ful-bre", "lee-bur"].entries()) {
          const text = `during the stall #${i}`;
          await publishRetrying(node.url, match, card(20 + i, text));
          during.push(text);
        }
        await page.waitForSelector(stateIs("reconnecting"), { timeout: 10_000 });
        const reconnectingAt = (await connAt(page)).find((c) => c.state === "reconnecting")!.at;
        const lastHeard = await page.evaluate(() => (window as unknown as { __lastHeard: number }).__lastHeard);
        const silence = reconnectingAt - lastHeard;
        const limit = MISSED_BEATS * (await assumedHeartbeat(page));
        await saveScreenshot(page, "page-watchdog-reconnecting");
        // Silence, measured from the last thing the page heard to "reconnecting": the limit, not sooner.
        expect(lastHeard).toBeLessThanOrEqual(stalledAt + 50);
        expect(silence).toBeGreaterThanOrEqual(limit - 20);
        expect(silence).toBeLessThanOrEqual(limit + TIMER_SLACK_MS);

        // Still dead for a while: the page's re-opens meet the same black hole.
        await Bun.sleep(2 * limit);
        await publishRetrying(node.url, "ful-bre", card(30, "late in the stall"));
        during.push("late in the stall");
        const reopensDuringStall = requests.filter((r) => isStream(r) && r.at > stalledAt).length;
        proxy.heal();
        const healedAt = Date.now();
        await page.waitForSelector(stateIs("resumed"), { timeout: 15_000 });
        for (const text of during) await page.waitForSelector(feedItem(text), { timeout: 5_000 });
        const resumedAfterHealMs = Date.now() - healedAt;
        await Bun.sleep(4 * HEARTBEAT_MS); // time for a duplicate to show up
        await expectEachOnce(page, ["before the stall", ...during]);
        // Every re-open resumed from the last id the page had seen (a new EventSource sends no Last-Event-ID).
        const reopens = requests.filter((r) => isStream(r) && r.at > stalledAt);
        expect(reopens.length).toBeGreaterThanOrEqual(1);
        for (const r of reopens) {
          expect(r.url.searchParams.get("lastEventId")).toBe(lastIdBeforeStall);
          expect(r.url.searchParams.get("heartbeat")).toBe("1");
        }
        const states = await connStates(page);
        expect(states.slice(0, 3)).toEqual(["connecting", "live", "reconnecting"]);
        expect(states.at(-1)).toBe("resumed");
        console.log(
          `watchdog: heartbeat learned ${heartbeat} ms (HEARTBEAT_MS ${HEARTBEAT_MS}); stall noticed ${reconnectingAt - stalledAt} ms after the black hole, ` +
            `${silence} ms after the last thing heard (limit ${limit} ms); ${reopensDuringStall} re-open(s) during the stall; ` +
            `every event in ${resumedAfterHealMs} ms after the heal`,
        );
      } finally {
        await session.close();
        proxy.stop();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a tab hidden past the pause closes its stream and stops polling; back in view it resumes exactly",
    async () => {
      await waitFor(async () => (await streamsOn(node)) === 0, 10_000, "no stream left from the previous test");
      const hiddenPauseMs = 1_500;
      const session = await launchBrowser();
      try {
        const page = session.page;
        await instrument(page);
        const requests = recordRequests(page);
        await page.goto(`${node.url}/?refresh=1&hiddenPause=${hiddenPauseMs / 1000}`);
        await page.waitForSelector(stateIs("live"));
        await publishRetrying(node.url, "ful-bre", card(40, "before hiding"));
        await page.waitForSelector(feedItem("before hiding"), { timeout: UPDATE_BUDGET_MS });
        const lastIdBeforeHiding = (await feed(page)).ids[0]!;
        expect(await streamsOn(node)).toBe(1);

        // Hidden for less than the pause: nothing changes.
        await setVisibility(page, "hidden");
        await Bun.sleep(hiddenPauseMs / 3);
        await setVisibility(page, "visible");
        await Bun.sleep(hiddenPauseMs);
        expect(await connStates(page)).toEqual(["connecting", "live"]);
        expect(requests.filter(isStream)).toHaveLength(1);
        expect(await streamsOn(node)).toBe(1);

        // Hidden for longer.
        await setVisibility(page, "hidden");
        const hiddenAt = Date.now();
        await page.waitForSelector(stateIs("paused"), { timeout: hiddenPauseMs + 5_000 });
        const pausedAt = (await connAt(page)).find((c) => c.state === "paused")!.at;
        expect(pausedAt - hiddenAt).toBeGreaterThanOrEqual(hiddenPauseMs - 20);
        const pollsWhileHiddenBeforePause = requests.filter((r) => isPoll(r) && r.at > hiddenAt && r.at <= pausedAt).length;
        await waitFor(async () => (await streamsOn(node)) === 0, 5_000, "the page's stream closed at the node");
        const streamGoneAfterMs = Date.now() - pausedAt;

        const during: string[] = [];
        for (let i = 0; i < 6; i++) {
          const text = `while hidden #${i}`;
          await publishRetrying(node.url, i % 2 ? "lee-bur" : "ful-bre", card(50 + i, text));
          during.push(text);
          await Bun.sleep(500);
        }
        await Bun.sleep(1_500); // in all, more than four refresh periods with the page paused
        const shownAt = Date.now();
        const requestsWhilePaused = requests.filter((r) => r.at > pausedAt && r.at < shownAt);
        expect(requestsWhilePaused.map((r) => r.url.pathname)).toEqual([]);
        expect(await streamsOn(node)).toBe(0);
        expect(await page.locator('[data-testid="feed"] li').count()).toBeGreaterThan(0);
        for (const text of during) expect(await page.locator(feedItem(text)).count()).toBe(0);

        await setVisibility(page, "visible");
        await page.waitForSelector(stateIs("resumed"), { timeout: 10_000 });
        for (const text of during) await page.waitForSelector(feedItem(text), { timeout: 5_000 });
        const caughtUpMs = Date.now() - shownAt;
        // Polling again (refresh=1: about one a second).
        await waitFor(async () => requests.filter((r) => isPoll(r) && r.at >= shownAt).length >= 2, 5_000, "polling to resume");
        await Bun.sleep(1_000);
        await expectEachOnce(page, ["before hiding", ...during]);
        const resumes = requests.filter((r) => isStream(r) && r.at >= shownAt);
        expect(resumes.length).toBeGreaterThanOrEqual(1);
        expect(resumes[0]!.url.searchParams.get("lastEventId")).toBe(lastIdBeforeHiding);
        expect(await streamsOn(node)).toBe(1);
        expect(await connStates(page)).toEqual(["connecting", "live", "paused", "connecting", "resumed"]);
        // State patches of the missed events were applied.
        expect(await page.textContent('.matches [data-match="lee-bur"] [data-testid="minute"]')).toBe("55'");
        expect(await page.textContent('.matches [data-match="ful-bre"] [data-testid="minute"]')).toBe("54'");
        await saveScreenshot(page, "page-visible-again");
        console.log(
          `hidden tab: paused ${pausedAt - hiddenAt} ms after hiding (setting ${hiddenPauseMs} ms; ${pollsWhileHiddenBeforePause} poll(s) before that), ` +
            `stream gone at the node within ${streamGoneAfterMs} ms; ${requestsWhilePaused.length} requests in ${shownAt - pausedAt} ms paused; ` +
            `${during.length} events published meanwhile, all shown ${caughtUpMs} ms after the tab came back (resumed from ${lastIdBeforeHiding})`,
        );
      } finally {
        await session.close();
      }
    },
    TEST_TIMEOUT_MS,
  );
});

describe("scoreboard on a node at capacity", () => {
  let nats: NatsFixture;
  let node: NodeFixture;

  beforeAll(async () => {
    nats = await startNats();
    node = await startNode({ natsUrl: nats.url, env: { HEARTBEAT_MS: String(HEARTBEAT_MS), MAX_CONNECTIONS: "1" } });
    await publishRetrying(node.url, "che-liv", kickoff("Chelsea", "Liverpool"));
  }, 60_000);

  afterAll(async () => {
    await node?.kill();
    await nats?.stop();
  });

  test(
    "a refused resume shows 'server busy, retrying', no error, and EventSource comes back by itself with every event once",
    async () => {
      const session = await launchBrowser();
      const hog = new AbortController();
      try {
        const page = session.page;
        await instrument(page);
        const requests = recordRequests(page);
        await page.goto(`${node.url}/?hiddenPause=0.5`);
        await page.waitForSelector(stateIs("live"));
        await publishRetrying(node.url, "che-liv", card(5, "before the refusal"));
        await page.waitForSelector(feedItem("before the refusal"), { timeout: UPDATE_BUDGET_MS });

        // Let go of the only slot (a paused tab), take it with another client, come back: refused.
        await setVisibility(page, "hidden");
        await page.waitForSelector(stateIs("paused"), { timeout: 5_000 });
        await waitFor(async () => (await streamsOn(node)) === 0, 5_000, "the page's stream closed");
        const held = await fetch(`${node.url}/events?match=che-liv`, { signal: hog.signal });
        const heldReader = held.body!.getReader();
        await heldReader.read(); // admitted: its first bytes are in
        // Read on until the abort: a response nothing refers to is collected, and its connection closed,
        // which would free the slot at whatever moment the collector runs.
        const holding = drain(heldReader);
        expect(await streamsOn(node)).toBe(1);
        const during = ["while refused #0", "while refused #1"];
        for (const [i, text] of during.entries()) await publishRetrying(node.url, "che-liv", card(10 + i, text));

        const shownAt = Date.now();
        await setVisibility(page, "visible");
        await page.waitForSelector(stateIs("busy"), { timeout: 5_000 });
        expect(await page.textContent('[data-testid="conn-state"]')).toBe("server busy, retrying");
        await saveScreenshot(page, "page-server-busy");
        const refusedUrl = requests.filter((r) => isStream(r) && r.at >= shownAt)[0]!.url.href;
        // Still refused while the slot is taken: EventSource keeps coming back by itself after each wait.
        const streamRequests = () => requests.filter((r) => isStream(r) && r.at >= shownAt).length;
        await waitFor(async () => streamRequests() >= 2, 10_000, "EventSource came back after the refusal's wait");
        await Bun.sleep(500); // its refusal answered
        expect(await streamsOn(node)).toBe(1); // the slot was held all along
        hog.abort();
        await holding;
        const freedAt = Date.now();
        await page.waitForSelector(stateIs("resumed"), { timeout: 15_000 });
        for (const text of during) await page.waitForSelector(feedItem(text), { timeout: 5_000 });
        const backAfterMs = Date.now() - freedAt;
        await Bun.sleep(1_000);
        await expectEachOnce(page, ["before the refusal", ...during]);
        const attempts = requests.filter((r) => isStream(r) && r.at >= shownAt);
        // Every attempt is the same request: EventSource's own reconnects, no page re-open (which would
        // come after a "reconnecting" state).
        for (const r of attempts) expect(r.url.href).toBe(refusedUrl);
        const states = await connStates(page);
        expect(states).not.toContain("reconnecting");
        expect(states.slice(states.indexOf("paused"))).toEqual(["paused", "connecting", "resumed", "busy", "resumed"]);
        // Refused at least twice (on showing the tab, and again while the slot was held), then admitted.
        expect(attempts.length).toBeGreaterThanOrEqual(3);
        console.log(`refusal: ${attempts.length} stream requests from showing the tab until admitted; every event ${backAfterMs} ms after the slot was freed`);
      } finally {
        hog.abort();
        await session.close();
      }
    },
    TEST_TIMEOUT_MS,
  );
});
