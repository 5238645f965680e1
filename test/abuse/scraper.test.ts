/**
 * A scraper opening streams in a loop from one address is capped by the default limits
 * (MAX_STREAMS_PER_ADDRESS, STREAM_RATE_PER_ADDRESS) while fans on other addresses, including one
 * arriving mid-attack, stream on and receive every event in order. Loopback is made subject to the
 * limits (LIMITS_EXEMPT=none); every other limit keeps its default. The scraper's refused streams
 * get the SSE refusal (200, `retry:`, one `touchline.refused` with the error `rate_limited`), so an
 * attempt is told admitted or refused by its first event (test/helpers/refusal.ts).
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { waitFor } from "../helpers/cluster.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import type { SseConnection } from "../helpers/sse.ts";
import { LIMIT_DEFAULTS } from "../../src/limits/limitsConfig.ts";
import { metricValue, uniqueMatch } from "../integration/touchlineApi.ts";
import { openSseFrom, publishFrom } from "./fromAddress.ts";
import { expectAdmitted, isStreamRefusal, streamRefusalOf, wasAdmitted } from "../helpers/refusal.ts";

setDefaultTimeout(60_000);

const SCRAPER = "127.0.0.20";
const FANS = ["127.0.0.21", "127.0.0.22", "127.0.0.23"];
const LATE_FAN = "127.0.0.24";
const PUBLISHER = "127.0.0.25";
/** Parallel loops of the scraper, each opening a stream as soon as its last attempt was answered. */
const SCRAPER_LOOPS = 4;
const SCRAPE_MS = 6000;
const EVENTS = 60;
const PUBLISH_EVERY_MS = SCRAPE_MS / EVENTS;

const { node } = useNode({ env: { LIMITS_EXEMPT: "none" } });

test("a scraper looping on new streams is capped; fans on other addresses get every event", async () => {
  const match = uniqueMatch("scraped");
  const url = `${node.url}/matches/${match}/events`;
  const kickoff = await publishFrom(PUBLISHER, node.url, match, { type: "kickoff" });
  expect(kickoff.status).toBe(201);

  const fans = await Promise.all(FANS.map((a) => openSseFrom(a, url)));
  await Promise.all(fans.map((f) => expectAdmitted(f)));

  const scraped: SseConnection[] = [];
  /** Attempts by outcome: "admitted", "refused <error>" (the SSE refusal, checked whole), or "status <n> ...". */
  const answers = new Map<string, number>();
  let mostOpen = 0;
  const deadline = Date.now() + SCRAPE_MS;
  const scraperLoop = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const conn = await openSseFrom(SCRAPER, url);
      let outcome: string;
      if (await wasAdmitted(conn)) {
        outcome = "admitted";
        scraped.push(conn);
        mostOpen = Math.max(mostOpen, scraped.filter((c) => !c.isEnded).length);
      } else if (isStreamRefusal(conn)) {
        outcome = `refused ${(await streamRefusalOf(conn)).error}`;
      } else {
        outcome = `status ${conn.status} ${conn.body.slice(0, 80)}`;
        await conn.close();
      }
      answers.set(outcome, (answers.get(outcome) ?? 0) + 1);
    }
  };

  const publishedIds: string[] = [];
  let lateFan: SseConnection | undefined;
  const publisher = async (): Promise<void> => {
    for (let i = 0; i < EVENTS; i++) {
      const answer = await publishFrom(PUBLISHER, node.url, match, { type: "goal", data: { n: i } });
      expect(answer.status).toBe(201);
      publishedIds.push((JSON.parse(answer.body) as { id: string }).id);
      if (i === EVENTS / 2) {
        lateFan = await openSseFrom(LATE_FAN, url, { "last-event-id": publishedIds[0]! });
      }
      await Bun.sleep(PUBLISH_EVERY_MS);
    }
  };

  await Promise.all([...Array.from({ length: SCRAPER_LOOPS }, scraperLoop), publisher()]);

  await expectAdmitted(lateFan!);
  const admitted = answers.get("admitted") ?? 0;
  const refused = answers.get("refused rate_limited") ?? 0;
  console.log(`scraper: ${admitted} streams admitted, ${refused} refused (touchline.refused, rate_limited) in ${SCRAPE_MS} ms; most open at once ${mostOpen}`);
  expect([...answers.keys()].sort()).toEqual(["admitted", "refused rate_limited"]);
  expect(mostOpen).toBeLessThanOrEqual(LIMIT_DEFAULTS.maxStreamsPerAddress);
  // Burst plus the sustained rate over the attack, with one second of slack.
  const rateBound = LIMIT_DEFAULTS.streamBurstPerAddress + (LIMIT_DEFAULTS.streamRatePerAddress * (SCRAPE_MS + 1000)) / 1000;
  expect(admitted).toBeLessThanOrEqual(Math.min(rateBound, LIMIT_DEFAULTS.maxStreamsPerAddress));
  expect(refused).toBeGreaterThan(admitted);
  expect(await metricValue(node.url, "touchline_limited_total", { limit: "stream_rate" })).toBeGreaterThan(0);

  // Every fan, the late one included (it resumed from the first goal), has every event once, in order.
  const goals = (c: SseConnection) => c.events.filter((e) => e.type === "goal").map((e) => e.lastEventId);
  for (const f of fans) {
    await f.until(() => goals(f).length >= EVENTS, 10_000, "every goal");
    expect(goals(f)).toEqual(publishedIds);
  }
  await lateFan!.until(() => goals(lateFan!).length >= EVENTS - 1, 10_000, "every goal after the resume id");
  expect(goals(lateFan!)).toEqual(publishedIds.slice(1));

  await Promise.all([...scraped, ...fans, lateFan!].map((c) => c.close()));
  await waitFor(async () => (await metricValue(node.url, "touchline_streams_open")) === 0, 5000, "every stream closed");
  expect(await metricValue(node.url, "touchline_limiter_keys", { limiter: "open_streams" })).toBe(0);
  expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
});
