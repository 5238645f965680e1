/**
 * Pieces of the Prometheus text exposition format 0.0.4 shared by the registry:
 * name rules, escaping and number formatting.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export const METRIC_NAME_PATTERN = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export const LABEL_NAME_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Label names starting with `__` are reserved for Prometheus itself. */
export const RESERVED_LABEL_PREFIX = "__";

const LABEL_VALUE_SPECIALS = /[\\"\n]/g;
const HELP_SPECIALS = /[\\\n]/g;

function escapeChar(c: string): string {
  if (c === "\n") return "\\n";
  return `\\${c}`;
}

/** Label values escape backslash, double quote and line feed. */
function escapeLabelValue(value: string): string {
  return value.replace(LABEL_VALUE_SPECIALS, escapeChar);
}

/** HELP text escapes only backslash and line feed (quotes stay as they are). */
export function escapeHelp(help: string): string {
  return help.replace(HELP_SPECIALS, escapeChar);
}

/** Sample values use Go float syntax: JS number text plus `+Inf`, `-Inf`, `NaN`. */
export function formatSampleValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

/** `a="x",b="y"` (no braces), the label values already escaped. */
export function formatLabelPairs(names: readonly string[], values: readonly string[]): string {
  let text = "";
  for (let i = 0; i < names.length; i++) {
    if (i > 0) text += ",";
    text += `${names[i]}="${escapeLabelValue(values[i] ?? "")}"`;
  }
  return text;
}
