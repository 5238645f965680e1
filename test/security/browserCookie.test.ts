/**
 * A browser `EventSource` in real Chromium (playwright-core, /usr/bin/chromium) reading a private match
 * with the `touchline_token` cookie, which the page itself sets: without the cookie the node answers
 * 401 and EventSource gives up; with it, the snapshot and live events arrive. A cookie token that
 * expires ends the stream with a `touchline.expired` event the page can listen for, and the browser's
 * automatic reconnect is then refused, so EventSource stops for good.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import type { Page } from "playwright-core";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { launchBrowser, type BrowserSession } from "../helpers/browser.ts";
import { uniqueMatch } from "../integration/touchlineApi.ts";
import { SECRET, hsToken, publishWith, untilApplied } from "./securityFixtures.ts";

setDefaultTimeout(60_000);

/** EventSource.readyState values. */
const CLOSED = 2;

let nats: NatsFixture;
let node: NodeFixture;
let session: BrowserSession;
let publisher: string;
const MATCH = uniqueMatch("browser-priv");

interface PageLog {
  events: { type: string; data: string; lastEventId: string }[];
  errors: number;
  readyState: number;
}

/** Opens an EventSource in the page that records snapshot, goal and touchline.expired events. */
async function openInPage(page: Page, path: string): Promise<void> {
  await page.evaluate((url) => {
    const log: PageLog = { events: [], errors: 0, readyState: 0 };
    (window as unknown as { __log: PageLog }).__log = log;
    const es = new EventSource(url);
    (window as unknown as { __es: EventSource }).__es = es;
    for (const type of ["snapshot", "goal", "touchline.expired"]) {
      es.addEventListener(type, (e) => {
        const m = e as MessageEvent<string>;
        log.events.push({ type, data: m.data, lastEventId: m.lastEventId });
      });
    }
    es.onerror = () => {
      log.errors++;
      log.readyState = es.readyState;
    };
  }, path);
}

const pageLog = (page: Page) => page.evaluate(() => (window as unknown as { __log: PageLog }).__log);

async function untilLog(page: Page, check: (log: PageLog) => boolean, what: string, timeoutMs = 10_000): Promise<PageLog> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = await pageLog(page);
    if (check(log)) return log;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(log)}`);
    await Bun.sleep(50);
  }
}

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url, env: { TOUCHLINE_JWT_SECRET: SECRET } });
  publisher = await hsToken({ publish: "*", subscribe: "*" });
  const first = await publishWith(node.url, MATCH, { type: "kickoff", state: { status: "live" }, private: true }, publisher);
  expect(first.status).toBe(201);
  await untilApplied(node.url, MATCH, String(first.json.id), publisher);
  session = await launchBrowser();
  // Any page of the node gives the page the node's origin, so EventSource sends its cookies.
  await session.page.goto(`${node.url}/healthz`);
});

afterAll(async () => {
  await session?.close();
  await node?.kill();
  await nats?.stop();
});

test("without the cookie: 401, and EventSource gives up", async () => {
  const page = session.page;
  await openInPage(page, `/matches/${MATCH}/events`);
  const log = await untilLog(page, (l) => l.errors > 0 && l.readyState === CLOSED, "EventSource to close");
  expect(log.events).toHaveLength(0);
});

test("with the cookie set by the page: the private match's snapshot and live events", async () => {
  const page = session.page;
  const token = await hsToken({ subscribe: [MATCH] });
  await page.evaluate((t) => {
    // biome-ignore lint/suspicious/noDocumentCookie: the test sets the cookie the way a page would.
    document.cookie = `touchline_token=${t}; path=/; SameSite=Strict`;
  }, token);
  await openInPage(page, `/matches/${MATCH}/events`);
  await untilLog(page, (l) => l.events.some((e) => e.type === "snapshot"), "the snapshot");
  const goal = await publishWith(node.url, MATCH, { type: "goal", data: { minute: 31, player: "Cookie" }, state: { homeScore: 1 } }, publisher);
  expect(goal.status).toBe(201);
  const log = await untilLog(page, (l) => l.events.some((e) => e.type === "goal"), "the goal");
  const got = log.events.find((e) => e.type === "goal")!;
  expect(got.lastEventId).toBe(String(goal.json.id));
  expect(JSON.parse(got.data)).toMatchObject({ match: MATCH, data: { player: "Cookie" } });
  expect(log.errors).toBe(0);
  await page.evaluate(() => (window as unknown as { __es: EventSource }).__es.close());
});

test("a cookie token that expires: touchline.expired reaches the page, and the reconnect is refused", async () => {
  const page = session.page;
  const expiresIn = 2;
  const token = await hsToken({ subscribe: [MATCH], expiresIn });
  await page.evaluate((t) => {
    // biome-ignore lint/suspicious/noDocumentCookie: the test sets the cookie the way a page would.
    document.cookie = `touchline_token=${t}; path=/; SameSite=Strict`;
  }, token);
  await openInPage(page, `/matches/${MATCH}/events`);
  await untilLog(page, (l) => l.events.some((e) => e.type === "snapshot"), "the snapshot");
  const log = await untilLog(page, (l) => l.readyState === CLOSED, "EventSource to give up after expiry", (expiresIn + 10) * 1000);
  const expired = log.events.find((e) => e.type === "touchline.expired");
  expect(expired).toBeDefined();
  expect(JSON.parse(expired!.data).reason).toBe("token_expired");
});
