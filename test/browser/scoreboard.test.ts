/**
 * The scoreboard page in real Chromium against real Touchline nodes (real NATS JetStream): it loads,
 * shows the matches, updates within a second of a publish, and survives the death of the node serving
 * it in a three-node cluster behind the entry port, showing every event published meanwhile once.
 * Screenshots go to test/artifacts/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { startCluster, startNats, startNode, waitFor, type ClusterFixture, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { connStates, launchBrowser, PHONE_VIEWPORT, recordConnStates, saveScreenshot, type BrowserSession } from "../helpers/browser.ts";
import { kickoff, publishRetrying } from "../helpers/scoreboardEvents.ts";

/** The bound between a publish and the page showing it. */
const UPDATE_BUDGET_MS = 1_000;
/** Membership drops a dead node within 10 s; the page's backoff adds at most a few seconds on top. */
const RECOVERY_BUDGET_MS = 30_000;
const EVENTS_DURING_OUTAGE = 6;

const cell = (match: string, testid: string) => `.matches [data-match="${match}"] [data-testid="${testid}"]`;
const feedTexts = (page: Page) => page.locator('[data-testid="feed"] li .text').allTextContents();

/** What a node answers for its own id. */
async function clusterNodeOf(node: NodeFixture): Promise<string> {
  return ((await (await fetch(`${node.url}/cluster`)).json()) as { node: string }).node;
}

/** The page's node label, once the stream's `touchline.hello` has named it. */
async function nodeNamedByStream(page: Page): Promise<string> {
  await page.waitForSelector('[data-testid="node"][data-source="stream"]', { timeout: 5_000 });
  return (await page.textContent('[data-testid="node"]'))!;
}

describe("scoreboard on one real node", () => {
  let nats: NatsFixture;
  let node: NodeFixture;
  let session: BrowserSession;

  beforeAll(async () => {
    nats = await startNats();
    node = await startNode({ natsUrl: nats.url });
    await publishRetrying(node.url, "ars-che", kickoff("Arsenal", "Chelsea"));
    await publishRetrying(node.url, "liv-eve", kickoff("Liverpool", "Everton"));
    await publishRetrying(node.url, "liv-eve", {
      type: "goal",
      data: { team: "away", player: "Calvert-Lewin", minute: 12 },
      state: { awayScore: 1, minute: 12 },
    });
    session = await launchBrowser({ viewport: PHONE_VIEWPORT });
  });

  afterAll(async () => {
    await session?.close();
    await node?.kill();
    await nats?.stop();
  });

  test("loads and shows the matches with score, minute and the node serving it", async () => {
    const page = session.page;
    await page.goto(node.url);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
    expect(await page.textContent(cell("liv-eve", "home-team"))).toBe("Liverpool");
    expect(await page.textContent(cell("liv-eve", "away-score"))).toBe("1");
    expect(await page.textContent(cell("liv-eve", "minute"))).toBe("12'");
    expect(await page.textContent(cell("ars-che", "away-team"))).toBe("Chelsea");
    expect(await nodeNamedByStream(page)).toBe(await clusterNodeOf(node));
    expect(await page.textContent('[data-testid="node"]')).toBe(node.nodeId);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE_VIEWPORT.width);
    await saveScreenshot(page, "scoreboard-one-node");
  });

  test("shows a published goal within a second", async () => {
    const page = session.page;
    const started = performance.now();
    await publishRetrying(node.url, "ars-che", {
      type: "goal",
      data: { team: "home", player: "Saka", minute: 23, text: "Saka scores from the edge" },
      state: { homeScore: 1, minute: 23 },
    });
    await page.waitForSelector(`${cell("ars-che", "home-score")}:text-is("1")`, { timeout: UPDATE_BUDGET_MS });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(UPDATE_BUDGET_MS);
    expect(await page.textContent('[data-testid="feed"] li:first-child .text')).toBe("Saka scores from the edge");
    console.log(`publish to page: ${elapsed.toFixed(0)} ms`);
  });

  test("moves the clock on the demo producer's minute ticks (a state patch, or the data alone) without feed lines", async () => {
    const page = session.page;
    const feedBefore = await page.locator('[data-testid="feed"] li').count();
    const started = performance.now();
    await publishRetrying(node.url, "ars-che", { type: "minute", data: { minute: 57 }, state: { minute: 57 } });
    await page.waitForSelector(`${cell("ars-che", "minute")}:text-is("57'")`, { timeout: UPDATE_BUDGET_MS });
    expect(performance.now() - started).toBeLessThan(UPDATE_BUDGET_MS);
    // A tick without a patch: the convention takes the clock from data.minute.
    await publishRetrying(node.url, "liv-eve", { type: "minute", data: { minute: 58 } });
    await page.waitForSelector(`${cell("liv-eve", "minute")}:text-is("58'")`, { timeout: UPDATE_BUDGET_MS });
    // The patch of an event of any other type moves the clock too.
    await publishRetrying(node.url, "ars-che", { type: "substitution", data: { team: "away", minute: 59, text: "Sub at the hour" }, state: { minute: 59 } });
    await page.waitForSelector(`${cell("ars-che", "minute")}:text-is("59'")`, { timeout: UPDATE_BUDGET_MS });
    expect(await page.locator('[data-testid="feed"] li').count()).toBe(feedBefore + 1);
    expect(await page.locator('[data-testid="feed"] li[data-type="minute"]').count()).toBe(0);
  });
});

describe("scoreboard on a three-node cluster behind the entry port", () => {
  let cluster: ClusterFixture;
  let session: BrowserSession;

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3 });
    for (const [i, [home, away]] of [
      ["Leeds", "Burnley"],
      ["Spurs", "West Ham"],
      ["Fulham", "Brentford"],
      ["Wolves", "Villa"],
    ].entries()) {
      await publishRetrying(cluster.entryUrl, `m${i}`, kickoff(home!, away!));
    }
    session = await launchBrowser();
  });

  afterAll(async () => {
    await session?.close();
    await cluster?.stop();
  });

  test("after the node serving the page is killed, shows reconnecting, then resumed, and every event published meanwhile once", async () => {
    const page = session.page;
    await recordConnStates(page);
    await page.goto(cluster.entryUrl);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
    for (let i = 0; i < 4; i++) await page.waitForSelector(cell(`m${i}`, "home-score"));
    await publishRetrying(cluster.entryUrl, "m0", {
      type: "goal",
      data: { team: "home", minute: 5, text: "before the outage" },
      state: { homeScore: 1, minute: 5 },
    });
    await page.waitForSelector('[data-testid="feed"] li:has-text("before the outage")', { timeout: UPDATE_BUDGET_MS });

    // The page holds the only client stream in the cluster: the node that counts one is serving it.
    const serving = await servingNode(cluster.nodes);
    const survivors = cluster.nodes.filter((n) => n !== serving);
    // Behind the entry port only the stream itself can say which node serves it.
    expect(await nodeNamedByStream(page)).toBe(await clusterNodeOf(serving));
    await serving.kill();
    await page.waitForSelector('[data-testid="conn-state"][data-state="reconnecting"]', { timeout: 5_000 }).catch(() => {});
    await saveScreenshot(page, "scoreboard-reconnecting");

    const published: string[] = [];
    const lastMinute = new Map<string, number>();
    for (let i = 0; i < EVENTS_DURING_OUTAGE; i++) {
      const match = `m${i % 4}`;
      const text = `during the outage #${i}`;
      await publishRetrying(survivors[i % survivors.length]!.url, match, {
        type: "card",
        data: { team: "away", minute: 30 + i, text },
        state: { minute: 30 + i },
      });
      published.push(text);
      lastMinute.set(match, 30 + i);
    }

    await page.waitForSelector('[data-testid="conn-state"][data-state="resumed"]', { timeout: RECOVERY_BUDGET_MS });
    for (const text of published) await page.waitForSelector(`[data-testid="feed"] li:has-text("${text}")`, { timeout: RECOVERY_BUDGET_MS });
    // Give a duplicate replay time to show up before counting.
    await Bun.sleep(500);
    const texts = await feedTexts(page);
    const times = await page.locator('[data-testid="feed"] li').evaluateAll((items) => items.map((i) => Number(i.getAttribute("data-ts"))));
    expect(times).toEqual([...times].sort((a, b) => b - a)); // newest first, even after a replay
    for (const text of [...published, "before the outage"]) expect(texts.filter((t) => t === text)).toHaveLength(1);
    const states = await connStates(page);
    expect(states.slice(0, 2)).toEqual(["connecting", "live"]);
    expect(states).toContain("reconnecting");
    expect(states.at(-1)).toBe("resumed");
    expect(states.indexOf("reconnecting")).toBeLessThan(states.lastIndexOf("resumed"));
    // The new stream named its node: the survivor now holding the page's stream, not the dead node.
    const newServing = await servingNode(survivors);
    const newId = await clusterNodeOf(newServing);
    await waitFor(async () => (await page.textContent('[data-testid="node"]')) === newId, 5_000, `node label to name ${newId}`);
    expect(await page.getAttribute('[data-testid="node"]', "data-source")).toBe("stream");
    expect(newId).not.toBe(serving.nodeId);
    // The state patches of the missed events were applied too.
    for (const [match, minute] of lastMinute) expect(await page.textContent(cell(match, "minute"))).toBe(`${minute}'`);
    await saveScreenshot(page, "scoreboard-resumed");
  }, 90_000);
});

/** The node whose `/cluster` counts one open client stream. */
async function servingNode(nodes: NodeFixture[]): Promise<NodeFixture> {
  let found: NodeFixture | undefined;
  await waitFor(
    async () => {
      const counts = await Promise.all(nodes.map(async (n) => ((await (await fetch(`${n.url}/cluster`)).json()) as { streams: number }).streams));
      const holders = nodes.filter((_, i) => counts[i] === 1);
      found = holders.length === 1 && counts.reduce((a, b) => a + b, 0) === 1 ? holders[0] : undefined;
      return found !== undefined;
    },
    5_000,
    "exactly one node to hold the page's stream",
  );
  return found!;
}
