/**
 * `--name=value` numbers for the standalone bench scripts (bench/http2.ts, bench/nodeJoin.ts); `bun run
 * bench` has its own options (bench-config.ts).
 */
export function numberArg(name: string, fallback: number): number {
  const given = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (given === undefined) return fallback;
  const value = Number(given.slice(name.length + 3));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${given}`);
  return value;
}
