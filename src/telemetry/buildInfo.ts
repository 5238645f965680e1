/**
 * touchline_build_info{version}: always 1, its label names the version this node runs (package.json's),
 * so a dashboard shows a rolling upgrade and a query can join any series to its node's version:
 * `rate(x[5m]) * on(instance) group_left(version) touchline_build_info`.
 */
import packageJson from "../../package.json" with { type: "json" };
import type { MetricsRegistry } from "./metrics";

/** package.json's version, read once when the node starts. */
export const TOUCHLINE_VERSION: string = packageJson.version;

export function registerBuildInfo(registry: MetricsRegistry, version: string = TOUCHLINE_VERSION): void {
  registry.gauge("touchline_build_info", "Always 1; the version label names the Touchline version this node runs.", ["version"]).labels({ version }).set(1);
}
