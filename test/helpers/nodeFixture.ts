/**
 * The set-up most integration test files share: one JetStream `nats-server` and one node for the whole
 * file, started before its tests and stopped after them.
 *
 *   const { nats, node } = useNode({ env: { WINDOW_EVENTS: "16" } });
 *   test("...", async () => { await fetch(`${node.url}/readyz`) });
 *
 * `nats` and `node` stand for the fixtures started in beforeAll (reading them earlier throws).
 */
import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNats, startNode, type NatsFixture, type NodeFixture, type NodeOptions } from "./cluster.ts";

/** Starting NATS and a node, waiting for /readyz, can take a while on a loaded machine. */
const START_TIMEOUT_MS = 30_000;

export interface UseNodeOptions extends Omit<NodeOptions, "natsUrl"> {
  /** A nats-server configuration file's text (a small store, a max_payload), given to it with `-c`. */
  natsConfig?: string;
}

export function useNode(options: UseNodeOptions = {}): { nats: NatsFixture; node: NodeFixture } {
  const { natsConfig, ...nodeOptions } = options;
  let nats: NatsFixture | undefined;
  let node: NodeFixture | undefined;
  let configDir: string | undefined;
  beforeAll(async () => {
    let args: string[] = [];
    if (natsConfig !== undefined) {
      configDir = mkdtempSync(join(tmpdir(), "touchline-nats-conf-"));
      const file = join(configDir, "nats.conf");
      writeFileSync(file, natsConfig);
      args = ["-c", file];
    }
    nats = await startNats({ args });
    node = await startNode({ ...nodeOptions, natsUrl: nats.url });
  }, START_TIMEOUT_MS);
  afterAll(async () => {
    if (node?.proc.exitCode === null) await node.kill();
    await nats?.stop();
    if (configDir !== undefined) rmSync(configDir, { recursive: true, force: true });
  });
  return { nats: startedLater("nats", () => nats), node: startedLater("node", () => node) };
}

/** An object that forwards to the fixture once beforeAll has started it. */
function startedLater<T extends object>(what: string, current: () => T | undefined): T {
  return new Proxy({} as T, {
    get(_, key) {
      const target = current();
      if (!target) throw new Error(`the test ${what} is not started yet: use it inside tests or hooks`);
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
