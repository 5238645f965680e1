/**
 * A hand-written SVG chart of one run: steady fan-out latency (p50 and p99), burst throughput and
 * server CPU per delivery, one horizontal bar per peer. No dependency, readable in any browser.
 */
import type { BenchResult, PeerResult } from "../results.ts";
import { fixed, whole } from "./format.ts";

const WIDTH = 760;
const LABEL_WIDTH = 210;
const VALUE_WIDTH = 90;
const BAR_AREA = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
const BAR_HEIGHT = 14;
const ROW_GAP = 6;
const PANEL_TITLE_HEIGHT = 28;
const PANEL_GAP = 18;
const TOP = 40;
const COLORS = { p50: "#7aa6d8", p99: "#1f5fa8", throughput: "#3c9a5f", cpu: "#c0703a" };

interface Series {
  label: string;
  color: string;
  value(peer: PeerResult): number | undefined;
  format(value: number): string;
}

interface Panel {
  title: string;
  series: Series[];
}

const PANELS: Panel[] = [
  {
    title: "Steady fan-out latency, ms (shorter is better)",
    series: [
      { label: "p50", color: COLORS.p50, value: (p) => p.steady?.p50Ms, format: (v) => `p50 ${whole(v)}` },
      { label: "p99", color: COLORS.p99, value: (p) => p.steady?.p99Ms, format: (v) => `p99 ${whole(v)}` },
    ],
  },
  {
    title: "Burst deliveries per second (longer is better)",
    series: [{ label: "deliveries/s", color: COLORS.throughput, value: (p) => p.burst?.deliveriesPerSecond, format: whole }],
  },
  {
    title: "Server CPU per delivery in the burst, µs (shorter is better)",
    series: [{ label: "µs", color: COLORS.cpu, value: (p) => p.burst?.serverCpuUsPerDelivery, format: (v) => fixed(v, 2) }],
  },
];

export function renderSvg(result: BenchResult): string {
  const parts: string[] = [];
  let y = TOP;
  for (const panel of PANELS) {
    parts.push(text(10, y + 16, panel.title, "title"));
    y += PANEL_TITLE_HEIGHT;
    const values = result.peers.flatMap((peer) => panel.series.map((s) => s.value(peer) ?? 0)).filter(Number.isFinite);
    const max = Math.max(1, ...values);
    for (const peer of result.peers) {
      const rowTop = y;
      for (const series of panel.series) {
        const value = series.value(peer);
        const known = value !== undefined && Number.isFinite(value);
        const width = known ? Math.max(1, (value / max) * BAR_AREA) : 0;
        parts.push(`<rect x="${LABEL_WIDTH}" y="${y}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" fill="${series.color}"/>`);
        parts.push(text(LABEL_WIDTH + width + 6, y + BAR_HEIGHT - 3, known ? series.format(value) : "n/a", "value"));
        y += BAR_HEIGHT + 2;
      }
      parts.push(text(LABEL_WIDTH - 8, (rowTop + y) / 2 + 4, peer.title, "label"));
      y += ROW_GAP;
    }
    y += PANEL_GAP;
  }
  const height = y;
  const heading = `Touchline bench ${result.startedAt.slice(0, 16).replace("T", " ")} UTC, ${result.config.streams.toLocaleString("en-US")} streams, ${result.machine.nproc} × ${result.machine.model}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    "<style>.title{font-size:14px;font-weight:bold}.label{font-size:12px;text-anchor:end}.value{font-size:11px}.heading{font-size:13px}</style>",
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    text(10, 22, heading, "heading"),
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

function text(x: number, y: number, content: string, className: string): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" class="${className}">${escapeXml(content)}</text>`;
}

function escapeXml(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
