/** The peers the bench knows, in table order; each entry says whether it can run here. */
import { type BenchConfig, FILE_LIMIT } from "../bench-config.ts";
import { NchanPeer } from "./nchan-peer.ts";
import { ensureNchanInstalled, nchanInstalled } from "./nchan-install.ts";
import type { Peer } from "./peer.ts";
import { bareBunPeer, nodePatternPeer } from "./relay-peer.ts";
import { TouchlinePeer, touchlineAvailable } from "./touchline-peer.ts";

export interface PeerEntry {
  name: string;
  /** Null when the peer can run, else why not; may install what is missing when allowed. */
  prepare(options: { install: boolean; log(line: string): void }): Promise<string | null>;
  create(serverCpus: string, config: BenchConfig): Peer;
}

export const PEERS: PeerEntry[] = [
  {
    name: "nchan",
    prepare: async ({ install, log }) => (install ? ensureNchanInstalled(log) : nchanInstalled() ? null : "nginx/nchan not installed"),
    create: (cpus) => new NchanPeer(cpus, FILE_LIMIT),
  },
  {
    name: "node",
    prepare: async () => (Bun.which("node") === null ? "node not on PATH" : null),
    create: nodePatternPeer,
  },
  {
    name: "bun",
    prepare: async () => null,
    create: bareBunPeer,
  },
  touchlineEntry(1),
  touchlineEntry(3),
];

function touchlineEntry(nodes: number): PeerEntry {
  return {
    name: nodes === 1 ? "touchline" : `touchline${nodes}`,
    prepare: async () => {
      if (!touchlineAvailable()) return "src/main.ts not there yet";
      return Bun.which("nats-server") === null ? "nats-server not on PATH" : null;
    },
    create: (cpus, config) => new TouchlinePeer(cpus, nodes, config.touchlineStreamCap),
  };
}
