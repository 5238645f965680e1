/**
 * CORS against real nodes. With CORS_ORIGINS="<listed>,*": a listed origin gets its own origin back
 * with credentials, on preflights, answers, errors and streams; any other origin gets `*` without
 * credentials and is served as anonymous (its token is not read), so it reaches public matches only.
 * With CORS_ORIGINS unset (the default): no cross-origin access, preflights refused, and a foreign
 * page's requests are anonymous (a visitor's cookie cannot publish). Every answer varies on Origin.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startNats, startNode, type NatsFixture, type NodeFixture } from "../helpers/cluster.ts";
import { openSse } from "../helpers/sse.ts";
import { uniqueMatch } from "../integration/touchlineApi.ts";
import { SECRET, hsToken, publishWith } from "./securityFixtures.ts";

setDefaultTimeout(30_000);

const LISTED = "https://scores.example.com";
const STRANGER = "https://elsewhere.example.net";

let nats: NatsFixture;
let corsNode: NodeFixture;
let defaultNode: NodeFixture;
let token: string;
const PUB = uniqueMatch("cors-pub");
const PRIV = uniqueMatch("cors-priv");

function preflight(url: string, origin: string, method = "GET", headers = "authorization"): Promise<Response> {
  return fetch(url, { method: "OPTIONS", headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers } });
}

function varyList(res: Response): string[] {
  return (res.headers.get("vary") ?? "").split(",").map((v) => v.trim().toLowerCase());
}

beforeAll(async () => {
  nats = await startNats();
  [corsNode, defaultNode] = await Promise.all([
    startNode({ natsUrl: nats.url, env: { TOUCHLINE_JWT_SECRET: SECRET, CORS_ORIGINS: `${LISTED},*` } }),
    startNode({ natsUrl: nats.url, env: { TOUCHLINE_JWT_SECRET: SECRET } }),
  ]);
  token = await hsToken({ publish: "*", subscribe: "*" });
  expect((await publishWith(corsNode.url, PUB, { type: "kickoff" }, token)).status).toBe(201);
  expect((await publishWith(corsNode.url, PRIV, { type: "kickoff", private: true }, token)).status).toBe(201);
});

afterAll(async () => {
  await Promise.all([corsNode?.kill(), defaultNode?.kill()]);
  await nats?.stop();
});

describe("CORS_ORIGINS with a listed origin and *", () => {
  test("a listed origin's preflight: its origin, credentials, methods, headers, max-age, Vary", async () => {
    const res = await preflight(`${corsNode.url}/matches/${PUB}/events`, LISTED, "POST", "authorization, content-type");
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(LISTED);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const h of ["authorization", "content-type", "last-event-id"]) expect(allowed).toContain(h);
    expect(res.headers.get("access-control-max-age")).toBe("600");
    expect(varyList(res)).toContain("origin");
  });

  test("any other origin's preflight: `*`, no credentials, no Authorization header allowed", async () => {
    const res = await preflight(`${corsNode.url}/matches/${PUB}/events`, STRANGER);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect((res.headers.get("access-control-allow-headers") ?? "").toLowerCase()).not.toContain("authorization");
  });

  test("answers, errors and streams carry the headers; credentials only for the listed origin", async () => {
    for (const [origin, allowOrigin, credentials] of [
      [LISTED, LISTED, "true"],
      [STRANGER, "*", null],
    ] as const) {
      for (const path of ["/matches", `/matches/${PUB}`, "/no/such/route", `/matches/${uniqueMatch("none")}`]) {
        const res = await fetch(`${corsNode.url}${path}`, { headers: { origin } });
        expect({ path, origin, acao: res.headers.get("access-control-allow-origin") }).toEqual({ path, origin, acao: allowOrigin });
        expect(res.headers.get("access-control-allow-credentials")).toBe(credentials);
        // Origin once; JSON answers also vary by Accept-Encoding (src/http/compression.ts).
        expect(varyList(res).filter((v) => v !== "accept-encoding")).toEqual(["origin"]);
        await res.arrayBuffer();
      }
      const conn = await openSse(`${corsNode.url}/matches/${PUB}/events`, { headers: { origin } });
      expect(conn.status).toBe(200);
      expect(conn.headers.get("access-control-allow-origin")).toBe(allowOrigin);
      expect(conn.headers.get("access-control-allow-credentials")).toBe(credentials);
      await conn.close();
    }
  });

  test("`*` reaches public matches only: a wildcard origin's token is not read", async () => {
    const fromListed = await fetch(`${corsNode.url}/matches/${PRIV}`, { headers: { origin: LISTED, authorization: `Bearer ${token}` } });
    expect(fromListed.status).toBe(200);
    const fromStranger = await fetch(`${corsNode.url}/matches/${PRIV}`, { headers: { origin: STRANGER, authorization: `Bearer ${token}` } });
    expect(fromStranger.status).toBe(401);
    expect(fromStranger.headers.get("access-control-allow-origin")).toBe("*"); // the page may read why
    const stream = await openSse(`${corsNode.url}/matches/${PRIV}/events?access_token=${token}`, { headers: { origin: STRANGER } });
    expect(stream.status).toBe(401);
    await stream.close();
    const listing = (await (await fetch(`${corsNode.url}/matches`, { headers: { origin: STRANGER, cookie: `touchline_token=${token}` } })).json()) as {
      matches: { match: string }[];
    };
    expect(listing.matches.map((m) => m.match)).not.toContain(PRIV);
  });

  test("publishing: a listed origin with a token may, a wildcard origin may not", async () => {
    const post = (origin: string) =>
      fetch(`${corsNode.url}/matches/${PUB}/events`, {
        method: "POST",
        headers: { origin, "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ type: "goal" }),
      });
    expect((await post(LISTED)).status).toBe(201);
    const stranger = await post(STRANGER);
    expect(stranger.status).toBe(401);
  });
});

describe("CORS_ORIGINS unset (the default): same-origin only", () => {
  test("preflights are refused and answers carry no CORS headers", async () => {
    const pre = await preflight(`${defaultNode.url}/matches/${PUB}/events`, STRANGER, "POST");
    expect(pre.status).toBe(403);
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    expect(((await pre.json()) as { error: string }).error).toBe("forbidden");
    const res = await fetch(`${defaultNode.url}/matches/${PUB}`, { headers: { origin: STRANGER } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  test("a foreign page cannot ride a visitor's cookie; the node's own page can", async () => {
    const post = (origin: string) =>
      fetch(`${defaultNode.url}/matches/${PUB}/events`, {
        method: "POST",
        headers: { origin, "content-type": "application/json", cookie: `touchline_token=${token}` },
        body: JSON.stringify({ type: "goal" }),
      });
    expect((await post(STRANGER)).status).toBe(401);
    // The scoreboard page is served by the node: its Origin names the host it called.
    expect((await post(defaultNode.url)).status).toBe(201);
    const own = await fetch(`${defaultNode.url}/matches/${PRIV}`, { headers: { origin: defaultNode.url, cookie: `touchline_token=${token}` } });
    expect(own.status).toBe(200);
  });

  test("requests without an Origin (servers, curl) use their tokens as usual", async () => {
    expect((await publishWith(defaultNode.url, PUB, { type: "goal" }, token, "cookie")).status).toBe(201);
  });
});
