/** The results page: machine, settings, one row per peer, and Touchline as ratios to the peers users compare it with. */
import type { BenchResult, DeliveryFigures, PeerResult } from "../results.ts";
import { fixed, kib, ratio, whole } from "./format.ts";
import { renderFirstEvent, renderIssue12 } from "./issue12.ts";

const REFERENCE_NCHAN = "nchan";
const REFERENCE_NODE = "node";
const TOUCHLINE_PREFIX = "touchline";
const TOUCHLINE_ONE_NODE = "touchline";
/** A generator core this busy during the burst means the burst figure is its ceiling, not the server's. */
const GENERATOR_BOUND_PERCENT = 90;
/** The issue's bound on what the cluster may add to one node's p50 latency. */
const CLUSTER_P50_BUDGET_MS = 10;

export function renderMarkdown(result: BenchResult, options: { command: string; chartFile: string | null }): string {
  const { machine, config, cores } = result;
  const lines: string[] = [];
  lines.push(`# Touchline benchmark, ${result.startedAt.slice(0, 16).replace("T", " ")} UTC`);
  lines.push("");
  lines.push(`- Machine: ${machine.nproc} × ${machine.model}, Linux ${machine.kernel}`);
  lines.push(
    `- Pinning: ${cores.server === "-" ? "none (taskset missing or one core)" : `server on CPU ${cores.server}, load generator and publisher on CPU ${cores.generator}`}`,
  );
  lines.push(`- Command: \`${options.command}\` (${config.quick ? "quick" : "full"} run, ${whole(result.durationSeconds)} s)`);
  lines.push(
    `- Scenarios: ${whole(config.streams)} streams on one channel for idle, steady (${config.steadyRatePerSecond} ev/s for ${config.steadySeconds} s${config.steadyRounds > 1 ? `, the median of ${config.steadyRounds} rounds by p99` : ""}), ` +
      `burst (${whole(config.burstEvents)} events back to back) and reconnect storm (publishing ${config.stormRatePerSecond} ev/s throughout); ` +
      `many channels: ${whole(config.channels)} channels × 20 streams, ${config.channelsRatePerSecond} ev/s spread for ${config.channelsSeconds} s, measured after ${config.channelsWarmupSeconds} s of the same load${alternatedChannels(result)}.`,
  );
  lines.push("");
  // A run of the issue-12 scenarios alone (`--scenarios=publish,matches`) has no fan-out figures to tabulate.
  const fanOut = result.peers.some((p) => p.idle !== undefined || p.channels !== undefined);
  if (fanOut) {
    lines.push(
      "| peer | idle KiB/stream | steady p50 / p99 / max ms | steady loss | burst deliveries/s | server µs/delivery | generator µs/delivery (busy) | channels p50 / p99 ms | channels loss | storm: all back, ms | storm loss |",
    );
    lines.push("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |");
    for (const peer of result.peers) lines.push(peerRow(peer));
    lines.push("");
  }
  const roundsOf = result.peers.filter((p) => (p.steady?.roundsP99Ms.length ?? 0) > 1);
  if (roundsOf.length > 0) {
    lines.push(`Steady p99 of each round, ms: ${roundsOf.map((p) => `${p.title} ${p.steady!.roundsP99Ms.map(whole).join(" / ")}`).join("; ")}.`, "");
  }
  const generatorBound = result.peers.filter((p) => (p.burst?.generatorBusyPercent ?? 0) >= GENERATOR_BOUND_PERCENT);
  if (generatorBound.length > 0) {
    lines.push(
      `**Generator-bound:** in the burst the load generator's core was ≥ ${GENERATOR_BOUND_PERCENT}% busy for ` +
        `${generatorBound.map((p) => p.title).join(", ")}: those deliveries/s are the generator's ceiling, not the server's. ` +
        "Compare server µs per delivery instead (steady latency at this many streams is paced by the generator too).",
      "",
    );
  }

  const held = result.peers.filter((p) => p.hold !== undefined);
  if (held.length > 0) {
    lines.push("## Holding many streams (fresh start)");
    lines.push("");
    lines.push("| peer | streams held | KiB/stream | delivered / expected | loss | p50 / p99 ms | server µs/delivery |");
    lines.push("| --- | ---: | ---: | ---: | --- | ---: | ---: |");
    for (const peer of held) {
      const h = peer.hold!;
      lines.push(
        `| ${peer.title} | ${whole(h.streams)} | ${kib(h.bytesPerStream)} | ${whole(h.deliveries)} / ${whole(h.expected)} | ${loss(h)} | ` +
          `${latencies(h, false)} | ${fixed(h.serverCpuUsPerDelivery, 2)} |`,
      );
    }
    lines.push("");
  }

  const capped = result.peers.filter((p) => p.limit !== undefined);
  if (capped.length > 0) {
    lines.push("## Past the stream cap");
    lines.push("");
    lines.push(
      "| peer | cap | asked | live | refused (of them in the stream) | other failures | idle CPU at the cap | slowest publish ms | delivered at the cap |",
    );
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (const peer of capped) {
      const l = peer.limit!;
      lines.push(
        `| ${peer.title} | ${whole(l.cap)} | ${whole(l.attempted)} | ${whole(l.live)} | ${whole(l.refused)}${l.refusedInStream === undefined ? "" : ` (${whole(l.refusedInStream)})`} | ${whole(l.otherFailures)} | ` +
          `${fixed(l.idleCpuPercent, 1)}% | ${whole(l.publishMsMax)} | ${whole(l.delivery.deliveries)} / ${whole(l.delivery.expected)}, loss ${loss(l.delivery)} |`,
      );
    }
    lines.push("");
  }

  lines.push(...renderFirstEvent(result), ...renderIssue12(result));

  const nchan = result.peers.find((p) => p.name === REFERENCE_NCHAN);
  const node = result.peers.find((p) => p.name === REFERENCE_NODE);
  const oneNode = result.peers.find((p) => p.name === TOUCHLINE_ONE_NODE);
  for (const touchline of result.peers.filter((p) => fanOut && p.name.startsWith(TOUCHLINE_PREFIX))) {
    const isCluster = touchline !== oneNode;
    lines.push(`## ${touchline.title} as ratios, same run`);
    lines.push("");
    lines.push(`| figure | Touchline | ÷ nchan | ÷ Node pattern |${isCluster ? " ÷ 1 node |" : ""} target |`);
    lines.push(`| --- | ---: | ---: | ---: |${isCluster ? " ---: |" : ""} --- |`);
    const row = (label: string, pick: (p: PeerResult) => number | undefined, shown: (v: number | undefined) => string, target: string): void => {
      const value = pick(touchline);
      const cells = [label, shown(value), nchan ? ratio(value, pick(nchan)) : "n/a", node ? ratio(value, pick(node)) : "n/a"];
      if (isCluster) cells.push(oneNode ? ratio(value, pick(oneNode)) : "n/a");
      cells.push(target);
      lines.push(`| ${cells.join(" | ")} |`);
    };
    const oneNodeOnly = (target: string): string => (isCluster ? "" : target);
    row("idle KiB per stream", (p) => p.idle?.bytesPerStream, kib, oneNodeOnly("≤ 0.6× nchan"));
    row("burst deliveries/s", (p) => p.burst?.deliveriesPerSecond, whole, oneNodeOnly("≥ 1.5× nchan"));
    row(
      "server µs per delivery (burst)",
      (p) => p.burst?.serverCpuUsPerDelivery,
      (v) => fixed(v, 2),
      oneNodeOnly("≤ 0.7× nchan"),
    );
    row(
      "steady p50 ms",
      (p) => p.steady?.p50Ms,
      whole,
      isCluster
        ? `≤ 1 node + ${CLUSTER_P50_BUDGET_MS} ms${oneNode?.steady && touchline.steady ? ` (now ${signed(touchline.steady.p50Ms - oneNode.steady.p50Ms)} ms)` : ""}`
        : "",
    );
    row("steady p99 ms", (p) => p.steady?.p99Ms, whole, oneNodeOnly("≤ 1× nchan, zero loss"));
    row("channels p99 ms", (p) => p.channels?.p99Ms, whole, "");
    row("storm: all back, ms", (p) => p.storm?.reconnectMs, whole, "");
    if (touchline.hold !== undefined) {
      row(
        `KiB per stream at ${whole(touchline.hold.streams)} streams`,
        (p) => p.hold?.bytesPerStream,
        kib,
        isCluster ? "nothing lost" : "holds near its file limit",
      );
    }
    lines.push("");
  }

  if (options.chartFile !== null) lines.push(`![steady latency and burst throughput](${options.chartFile})`, "");
  lines.push("How to read it:");
  lines.push(
    "- idle: growth of the server's resident memory (all its processes, from /proc) between before and after opening the streams, after a settle, divided by the streams.",
  );
  lines.push("- latency: receive time minus the event's `ts` (set by the publisher for relaying peers, by Touchline when JetStream stored it), whole ms.");
  lines.push(
    "- loss: every stream checks the sequence number inside each event: lost = gaps plus events never seen; dup = seen twice; ooo = out of order; drops = streams the server cut.",
  );
  lines.push(
    "- burst: deliveries ÷ time from the first publish to the last delivery; server µs/delivery from utime+stime of its processes (nchan: master and worker; Touchline: its nodes and the nats-server).",
  );
  lines.push(
    "- generator: the load generator's own CPU per delivery and how busy its core was during the burst; near 100% means the generator, not the server, set the pace.",
  );
  lines.push("- storm: all streams closed by the clients at once and reopened with Last-Event-ID; loss n/a for peers without resume.");
  lines.push(
    "- hold: the peer restarted, then filled with streams (one server near its 20,000-file limit, or 50,000 over a cluster), then a few events sent to all; latency there is paced by the one-core generator.",
  );
  lines.push(
    "- past the cap: with the held streams open, a node with a stream cap is asked for more; the excess must be refused (503, or a 200 stream of one `touchline.refused` event, counted in brackets), its CPU must stay quiet while refused clients retry, and publishes must still reach every live stream.",
  );
  lines.push(
    "- cluster: streams and publishes are dealt over the nodes directly (an L4 proxy process would need two descriptors per stream and cap the cluster at 10,000 streams on this machine).",
  );
  lines.push("");
  for (const peer of result.peers.filter((p) => p.error !== undefined)) lines.push(`- ${peer.title} stopped early: ${peer.error}`);
  for (const skipped of result.skipped) lines.push(`- ${skipped.name} skipped: ${skipped.reason}`);
  return `${lines.join("\n")}\n`;
}

function peerRow(peer: PeerResult): string {
  const cells = [
    peer.title,
    kib(peer.idle?.bytesPerStream),
    latencies(peer.steady, true),
    loss(peer.steady),
    whole(peer.burst?.deliveriesPerSecond),
    fixed(peer.burst?.serverCpuUsPerDelivery, 2),
    peer.burst === undefined ? "n/a" : `${fixed(peer.burst.generatorCpuUsPerDelivery, 2)} (${whole(peer.burst.generatorBusyPercent)}%)`,
    latencies(peer.channels, false),
    loss(peer.channels),
    whole(peer.storm?.reconnectMs),
    peer.storm === undefined ? "n/a" : peer.storm.lost === null ? "n/a (no resume)" : lossText(peer.storm.lost, peer.storm.duplicates, peer.storm.reordered, 0),
  ];
  return `| ${cells.join(" | ")} |`;
}

function latencies(f: DeliveryFigures | undefined, withMax: boolean): string {
  if (f === undefined) return "n/a";
  return withMax ? `${whole(f.p50Ms)} / ${whole(f.p99Ms)} / ${whole(f.maxMs)}` : `${whole(f.p50Ms)} / ${whole(f.p99Ms)}`;
}

function loss(f: DeliveryFigures | undefined): string {
  return f === undefined ? "n/a" : lossText(f.lost, f.duplicates, f.reordered, f.drops);
}

function signed(value: number): string {
  return value > 0 ? `+${value}` : String(value);
}

function lossText(lost: number, duplicates: number, reordered: number, drops: number): string {
  if (lost + duplicates + reordered + drops === 0) return "0";
  return `lost ${lost}, dup ${duplicates}, ooo ${reordered}, drops ${drops}`;
}

/** How the peers measured in alternating rounds took their turns, if any were. */
function alternatedChannels(result: BenchResult): string {
  const alternated = result.peers.find((p) => p.channels?.alternated !== undefined);
  const a = alternated?.channels?.alternated;
  if (alternated === undefined || a === undefined) return "";
  return ` (${alternated.name} and ${a.with} both holding their streams, taking turns in ${a.rounds} rounds of ${fixed(result.config.channelsSeconds / a.rounds, 1)} s each)`;
}
