/** Durations as settings spell them: `500ms`, `15s`, `1m`, `24h`, `2d`, or a bare number of milliseconds. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or undefined when `raw` is not a duration. */
export function parseDuration(raw: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!m) return undefined;
  return Number(m[1]) * DURATION_UNITS[m[2] ?? "ms"]!;
}

/** The shortest exact spelling of `ms` (`90s`, `1500ms`, `24h`), for messages. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "off";
  for (const unit of ["d", "h", "m", "s"] as const) {
    const size = DURATION_UNITS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
