/**
 * `touchline publish` against a real node (real nats-server): the id it prints is the stored event's,
 * data/state/key/final reach the node, the URL comes from --url or TOUCHLINE_URL, and a wrong command
 * line sends nothing (exit 2) while a refusal by the node is exit 1 with its code and message.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { poll } from "../../src/client/index.ts";
import { EVENT_ID } from "../helpers/eventIds.ts";
import { useNode } from "../helpers/nodeFixture.ts";
import { getJson, uniqueMatch } from "../integration/touchlineApi.ts";
import { cli } from "./cli.ts";

setDefaultTimeout(30_000);
const { node } = useNode();

describe("touchline publish", () => {
  test("prints the stored event's id; data and state reach the node", async () => {
    const match = uniqueMatch("cli-pub");
    const r = await cli(["publish", match, "goal", '{"team": "home", "player": "Saka", "minute": 23}', "--state", '{"homeScore": 1}', "--url", node.url]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(EVENT_ID);
    const read = await getJson<{ id: string; state: Record<string, unknown> }>(`${node.url}/matches/${match}`);
    expect(read.json).toMatchObject({ id, state: { homeScore: 1 } });
    const polled = await poll(node.url, match, { after: "0" });
    expect(polled.events).toHaveLength(1);
    expect(polled.events[0]).toMatchObject({ id, type: "goal", data: { team: "home", player: "Saka", minute: 23 } });
  });

  test("TOUCHLINE_URL is the default URL; data may come from stdin or be left out (null)", async () => {
    const match = uniqueMatch("cli-env");
    const fromStdin = await cli(["publish", match, "card", "-"], { env: { TOUCHLINE_URL: `${node.url}/` }, stdin: '{"player": "Rice"}' });
    expect(fromStdin.code).toBe(0);
    const bare = await cli(["publish", match, "kickoff"], { env: { TOUCHLINE_URL: node.url } });
    expect(bare.code).toBe(0);
    const polled = await poll<unknown>(node.url, match, { after: "0" });
    expect(polled.events.map((e) => [e.id, e.type, e.data])).toEqual([
      [fromStdin.stdout.trim(), "card", { player: "Rice" }],
      [bare.stdout.trim(), "kickoff", null],
    ]);
  });

  test("--key: the same key again prints the first id, stores nothing and says so on stderr", async () => {
    const match = uniqueMatch("cli-key");
    const first = await cli(["publish", match, "goal", '{"n": 1}', "--key", "k-1", "--url", node.url]);
    const again = await cli(["publish", match, "goal", '{"n": 2}', "--key", "k-1", "--url", node.url]);
    expect(first.code).toBe(0);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(first.stdout);
    expect(again.stderr).toContain('key "k-1" was seen before');
    expect((await poll(node.url, match, { after: "0" })).events).toHaveLength(1);
  });

  test("--final ends the match: a later publish exits 1 with the node's 409 match_ended", async () => {
    const match = uniqueMatch("cli-final");
    const last = await cli(["publish", match, "fulltime", "--final", "--state", '{"status": "full-time"}', "--url", node.url]);
    expect(last.code).toBe(0);
    expect((await getJson(`${node.url}/matches/${match}`)).json).toMatchObject({ id: last.stdout.trim(), ended: true });
    const late = await cli(["publish", match, "goal", "--url", node.url]);
    expect(late.code).toBe(1);
    expect(late.stdout).toBe("");
    expect(late.stderr).toStartWith("touchline publish: 409 match_ended: ");
  });

  test("a wrong command line exits 2 and sends nothing", async () => {
    const match = uniqueMatch("cli-bad");
    const cases: [string[], string][] = [
      [["publish", match, "goal", "{not json"], "the data is not JSON"],
      [["publish", match, "goal", "--state", "{"], "--state is not JSON"],
      [["publish", match, "snapshot"], "reserved"],
      [["publish", match, "touchline.end"], "reserved"],
      [["publish", "no spaces", "goal"], "is not a match id"],
      [["publish", match, "9goal"], "is not an event type"],
      [["publish", match], "give a match and an event type"],
      [["publish", match, "goal", "{}", "extra"], 'unexpected argument "extra"'],
      [["publish", match, "goal", "--url", "ftp://x"], "--url must be an http(s) URL"],
      [["publish", match, "goal", "--key"], "--key"],
    ];
    for (const [args, message] of cases) {
      const r = await cli([...args, ...(args.includes("--url") ? [] : ["--url", node.url])]);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(r.stderr).toContain(message);
      expect(r.stderr).toContain("touchline publish --help");
    }
    expect((await fetch(`${node.url}/matches/${match}`)).status).toBe(404);
  });

  test("an unreachable node: exit 1, saying which URL", async () => {
    const r = await cli(["publish", "m", "goal", "--url", "http://127.0.0.1:9"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("touchline publish: cannot reach http://127.0.0.1:9");
  });
});
