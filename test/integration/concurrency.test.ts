/**
 * The concurrency proof: 50 subscribers, 1,000 events published concurrently by 5 publishers
 * (200 each), every subscriber disconnecting and resuming by Last-Event-ID at random points (seeded, so a
 * failure replays). Every subscriber must end with every event exactly once, in increasing id order,
 * the ids being those the publishers got back.
 */
import { expect, test } from "bun:test";
import { useNode } from "../helpers/nodeFixture.ts";
import { openSse, type SseConnection } from "../helpers/sse.ts";
import { compareDelivery } from "./deliveryCheck.ts";
import { byId, publishConcurrently, publishOk, seededRandom, uniqueMatch, untilLatest } from "./touchlineApi.ts";

const SUBSCRIBERS = 50;
const PUBLISHERS = 5;
const EVENTS_PER_PUBLISHER = 200;
const TOTAL = PUBLISHERS * EVENTS_PER_PUBLISHER;
const SEED = Number(process.env.TEST_SEED ?? 1123);
/** A subscriber disconnects after 1..MAX_RUN events while publishing goes on. */
const MAX_RUN = 120;
const MAX_PAUSE_MS = 30;
const FINISH_TIMEOUT_MS = 20_000;

const { node } = useNode();

interface SubscriberResult {
  ids: string[];
  connections: number;
  snapshotsOnResume: number;
}

test(`${SUBSCRIBERS} subscribers resuming at random points while ${PUBLISHERS} publishers publish ${TOTAL} events: each gets every event once, in order`, async () => {
  const match = uniqueMatch("conc");
  const kickoff = await publishOk(node.url, match, { type: "kickoff" });
  await untilLatest(node.url, match, kickoff);
  const random = seededRandom(SEED);

  // Connected before publishing starts: the snapshot is at the kickoff, so every published event is owed.
  const firsts = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => openSse(`${node.url}/matches/${match}/events`)));
  await Promise.all(firsts.map((s) => s.untilEvents(1)));
  for (const s of firsts) expect([s.events[0]!.type, s.events[0]!.lastEventId]).toEqual(["snapshot", kickoff]);

  let publishing = true;
  const publishers = Promise.all(
    Array.from({ length: PUBLISHERS }, (_, p) =>
      publishConcurrently(node.url, match, EVENTS_PER_PUBLISHER, 1, (i) => ({ type: "tick", data: { publisher: p, i }, state: { [`p${p}`]: i } })),
    ),
  ).then((ids) => {
    publishing = false;
    return ids.flat();
  });

  const subscriber = async (first: SseConnection): Promise<SubscriberResult> => {
    const ids: string[] = [];
    let s = first;
    let connections = 1;
    let snapshotsOnResume = 0;
    const deadline = Date.now() + FINISH_TIMEOUT_MS;
    for (;;) {
      const runLength = 1 + Math.floor(random() * MAX_RUN);
      const keepOpen = (): boolean => !publishing && ids.length + s.matchEvents.length >= TOTAL;
      await s.until(() => keepOpen() || (publishing && s.matchEvents.length >= runLength), Math.max(1, deadline - Date.now()), "events").catch(() => {});
      // Leave politely or vanish, at random.
      if (random() < 0.5) await s.close();
      else s.destroy();
      if (s !== first) snapshotsOnResume += s.snapshots.length;
      ids.push(...s.matchEvents.map((e) => e.lastEventId));
      if (ids.length >= TOTAL || Date.now() >= deadline) break;
      await Bun.sleep(Math.floor(random() * MAX_PAUSE_MS));
      const last = s.lastEventId;
      s =
        random() < 0.5
          ? await openSse(`${node.url}/matches/${match}/events`, { headers: { "last-event-id": last } })
          : await openSse(`${node.url}/matches/${match}/events?lastEventId=${encodeURIComponent(last)}`);
      connections++;
    }
    return { ids, connections, snapshotsOnResume };
  };

  const results = await Promise.all(firsts.map(subscriber));
  const published = (await publishers).sort(byId);
  expect(new Set(published).size).toBe(TOTAL);

  const failures = results
    .map((r, k) => ({ subscriber: k, connections: r.connections, snapshotsOnResume: r.snapshotsOnResume, ...compareDelivery(published, r.ids) }))
    .filter((r) => !r.exact || r.snapshotsOnResume > 0);
  expect({ failed: failures.length, firstFailures: failures.slice(0, 5) }).toEqual({ failed: 0, firstFailures: [] });
  const reconnects = results.map((r) => r.connections - 1);
  // Everyone really did disconnect and resume mid-stream, most of them many times.
  expect(Math.min(...reconnects)).toBeGreaterThanOrEqual(1);
  console.log(
    `concurrency: seed ${SEED}; reconnects per subscriber min ${Math.min(...reconnects)}, max ${Math.max(...reconnects)}, total ${reconnects.reduce((a, b) => a + b, 0)}`,
  );
}, 60_000);
