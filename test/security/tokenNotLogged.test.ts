/**
 * The `access_token` query form puts a token in the URL: no log line and no span may ever hold it. A
 * node logging at debug level and exporting every span to a local OTLP receiver serves requests whose
 * tokens travel in the query on every route, accepted and refused (201, 200 streams, 401, 403, 404, 405,
 * 400); afterwards neither its stdout/stderr nor any span attribute contains any of those tokens.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { startOtlpReceiver, type OtlpReceiver } from "../helpers/otlpReceiver.ts";
import { openSse } from "../helpers/sse.ts";
import { uniqueMatch } from "../integration/touchlineApi.ts";
import { SECRET, hsToken, noneToken, publishWith, withToken } from "./securityFixtures.ts";

setDefaultTimeout(30_000);

const BATCH_DELAY_MS = 100;

let nats: NatsFixture;
let receiver: OtlpReceiver;
let node: NodeFixture;

beforeAll(async () => {
  [nats, receiver] = await Promise.all([startNats(), startOtlpReceiver()]);
  node = await startNode({
    natsUrl: nats.url,
    env: {
      TOUCHLINE_JWT_SECRET: SECRET,
      LOG_LEVEL: "debug",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: "touchline-token-leak-test",
      OTEL_BSP_SCHEDULE_DELAY: String(BATCH_DELAY_MS),
      OTEL_SDK_DISABLED: "false",
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_TRACES_SAMPLER: "parentbased_always_on",
    },
  });
});

afterAll(async () => {
  if (node?.proc.exitCode === null) await node.kill();
  await receiver?.stop();
  await nats?.stop();
});

test("tokens sent as access_token appear in no log line and no span", async () => {
  const match = uniqueMatch("leak");
  const tokens = {
    publisher: await hsToken({ publish: "*", subscribe: "*" }),
    readerOnly: await hsToken({ subscribe: ["another-match"] }),
    expired: await hsToken({ publish: "*", expiresIn: -60 }),
    unsigned: noneToken(),
    garbage: "not-a-jwt-but-a-secret-looking-string-0123456789",
  };
  const q = (path: string, token: string) => withToken(`${node.url}${path}`, token, "query").url;

  expect((await publishWith(node.url, match, { type: "kickoff", private: true }, tokens.publisher, "query")).status).toBe(201);
  expect((await publishWith(node.url, match, { type: "goal" }, tokens.readerOnly, "query")).status).toBe(403);
  expect((await publishWith(node.url, match, { type: "goal" }, tokens.expired, "query")).status).toBe(401);
  expect((await publishWith(node.url, match, { type: "goal" }, tokens.unsigned, "query")).status).toBe(401);
  expect((await publishWith(node.url, match, { type: "goal" }, tokens.garbage, "query")).status).toBe(401);
  expect(
    (await fetch(q(`/matches/${match}/events`, tokens.publisher), { method: "POST", body: "{", headers: { "content-type": "application/json" } })).status,
  ).toBe(400);

  const stream = await openSse(q(`/matches/${match}/events`, tokens.publisher));
  expect(stream.status).toBe(200);
  await stream.untilEvents(1);
  const refused = await openSse(q(`/events?match=${match}`, tokens.readerOnly));
  expect(refused.status).toBe(403);
  await stream.close();

  expect((await fetch(q(`/matches/${match}/poll?wait=0`, tokens.publisher))).status).toBe(200);
  expect((await fetch(q(`/matches/${match}`, tokens.readerOnly))).status).toBe(403);
  expect((await fetch(q(`/matches`, tokens.garbage))).status).toBe(401);
  expect((await fetch(q(`/no/such/route`, tokens.publisher))).status).toBe(404);
  expect((await fetch(q(`/matches/${match}/poll`, tokens.publisher), { method: "DELETE" })).status).toBe(405);

  // Let the batch exporter deliver, then stop the node so every log line is written out.
  await receiver.waitFor((spans) => spans.some((s) => s.kind === 2), 5000).catch(() => {});
  await Bun.sleep(BATCH_DELAY_MS * 3);
  await node.stop();

  const logs = node.output();
  const spans = JSON.stringify(receiver.spans);
  expect(receiver.spans.length).toBeGreaterThan(0);
  expect(logs).toContain("request refused"); // the refusals were logged, only without their tokens
  for (const [name, token] of Object.entries(tokens)) {
    const signature = token.split(".").at(-1) || token;
    expect({ name, inLogs: logs.includes(token) || logs.includes(signature) }).toEqual({ name, inLogs: false });
    expect({ name, inSpans: spans.includes(token) || spans.includes(signature) }).toEqual({ name, inSpans: false });
  }
  expect(logs).not.toContain("access_token");
  expect(spans).not.toContain("access_token");
});
