/**
 * Matches that end, in real Chromium against a real node: the page shows the final event, marks the
 * match ended on `touchline.end`, drops it after `?endedLinger=`, keeps streaming the other matches,
 * does not add ended matches from the list, and once every match on it has ended does not reconnect
 * (the resume would get 204) instead of looping.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Request } from "playwright-core";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { launchBrowser, type BrowserSession } from "../helpers/browser.ts";
import { publishOk, uniqueMatch } from "../integration/touchlineApi.ts";

const TEST_TIMEOUT_MS = 90_000;
const LINGER_S = 1.5;

let nats: NatsFixture;
let node: NodeFixture;
let session: BrowserSession | undefined;

beforeAll(async () => {
  nats = await startNats();
  node = await startNode({ natsUrl: nats.url });
}, TEST_TIMEOUT_MS);

afterAll(async () => {
  await session?.close();
  await node?.kill();
  await nats?.stop();
});

const row = (m: string) => `li.match[data-match="${m}"]`;

test(
  "an ended match is marked, dropped after the linger, the others go on; with all ended the page stops streaming",
  async () => {
    const [a, b, old] = [uniqueMatch("pa"), uniqueMatch("pb"), uniqueMatch("pold")];
    await publishOk(node.url, old, { type: "kickoff", state: { home: "Old", away: "Over", status: "live" } });
    await publishOk(node.url, old, { type: "fulltime", state: { status: "full-time" }, final: true });
    await publishOk(node.url, a, { type: "kickoff", state: { home: "Alpha", away: "Apex", homeScore: 0, awayScore: 0, status: "live" } });
    await publishOk(node.url, b, { type: "kickoff", state: { home: "Beta", away: "Bolt", homeScore: 0, awayScore: 0, status: "live" } });

    session = await launchBrowser();
    const page = session.page;
    const streams: string[] = [];
    page.on("request", (r: Request) => {
      if (new URL(r.url()).pathname.endsWith("/events")) streams.push(r.url());
    });
    await page.goto(`${node.url}/?endedLinger=${LINGER_S}&refresh=1`);
    await page.waitForSelector(row(a));
    await page.waitForSelector(row(b));
    // The match that had already ended is not added from the list.
    expect(await page.locator(row(old)).count()).toBe(0);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');

    await publishOk(node.url, a, { type: "fulltime", data: { text: "Full-time" }, state: { status: "full-time" }, final: true });
    await page.waitForSelector(`${row(a)}[data-ended="true"][data-status="full-time"]`);
    // The other match goes on on the same stream.
    await publishOk(node.url, b, { type: "goal", data: { team: "home", text: "Goal for Beta" }, state: { homeScore: 1 } });
    await page.waitForSelector(`${row(b)} [data-testid="home-score"]:has-text("1")`);
    // Dropped after the linger.
    await page.waitForSelector(row(a), { state: "detached", timeout: (LINGER_S + 5) * 1000 });

    await publishOk(node.url, b, { type: "fulltime", state: { status: "full-time" }, final: true });
    await page.waitForSelector(`${row(b)}[data-ended="true"]`);
    const before = streams.length;
    // With every match ended the stream ends; the page does not come back (a resume would get 204).
    await Bun.sleep(3_000);
    expect(streams.length - before).toBeLessThanOrEqual(1);
    expect(await page.getAttribute('[data-testid="conn-state"]', "data-state")).not.toBe("reconnecting");
    console.log(`page end: ${streams.length} stream requests in all; ${streams.length - before} after every match ended`);
  },
  TEST_TIMEOUT_MS,
);
