/**
 * Environment variables that look like settings but are not (a misspelt `MAX_CONECTIONS`, a made-up
 * `TOUCHLINE_PORT`): a node would silently ignore them, so start-up warns once for each.
 *
 * Looks like a setting: a `TOUCHLINE_*` name that is not declared, a declared name in other letter case,
 * or a name within edit distance 2 of a declared one (1 for names of five letters or fewer, so `HOME`
 * is not taken for `HOST`). Common variables of shells, runtimes and CI are never suspects.
 */
import { OTEL_LIBRARY_VARIABLES, SETTING_NAMES, TOOL_VARIABLES, isSetting, type SettingName } from "./settings.ts";

export interface StrayVariable {
  name: string;
  /** The declared setting it is probably meant to be. */
  suggestion?: SettingName;
}

type Env = Record<string, string | undefined>;

const OWN_PREFIX = "TOUCHLINE_";
const MAX_DISTANCE = 2;
const SHORT_NAME = 5;

/** Set by shells, terminals, runtimes, package managers, CI and containers: never taken for a setting. */
const COMMON_NAMES = new Set([
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "PWD",
  "OLDPWD",
  "TERM",
  "LANG",
  "LANGUAGE",
  "TZ",
  "TMPDIR",
  "TMP",
  "TEMP",
  "HOSTNAME",
  "HOSTTYPE",
  "OSTYPE",
  "MACHTYPE",
  "MAIL",
  "SHLVL",
  "_",
  "DISPLAY",
  "EDITOR",
  "VISUAL",
  "PAGER",
  "COLORTERM",
  "COLUMNS",
  "LINES",
  "CI",
  "DEBUG",
  "NO_COLOR",
  "FORCE_COLOR",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "ALL_PROXY",
  "INIT_CWD",
  "CONTAINER",
  "MOTD_SHOWN",
  "LS_COLORS",
  "LESSOPEN",
  "LESSCLOSE",
  "GOPATH",
  "GOROOT",
]);
const COMMON_PREFIXES = [
  "BUN_",
  "NODE_",
  "NPM_",
  "LC_",
  "XDG_",
  "SSH_",
  "GIT_",
  "GITHUB_",
  "RUNNER_",
  "DOCKER_",
  "KUBERNETES_",
  "DBUS_",
  "SUDO_",
  "TERM_",
  "VSCODE_",
  "JAVA_",
  "PYTHON",
  "HOMEBREW_",
  "ACTIONS_",
  "SSL_",
];

/**
 * Kubernetes gives every pod variables for each service: a service named `touchline` yields
 * TOUCHLINE_SERVICE_HOST, TOUCHLINE_SERVICE_PORT, TOUCHLINE_PORT=tcp://..., TOUCHLINE_PORT_3000_TCP...
 */
function isServiceLink(name: string, value: string | undefined): boolean {
  if (/_SERVICE_(HOST|PORT)(_[A-Z0-9_]+)?$/.test(name)) return true;
  if (/_PORT_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?$/.test(name)) return true;
  return /_PORT$/.test(name) && /^(tcp|udp|sctp):\/\//i.test(value?.trim() ?? "");
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The declared name nearest to `name`, if near enough to be a slip of the keyboard. */
export function nearestSetting(name: string): SettingName | undefined {
  const upper = name.toUpperCase();
  let best: SettingName | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of SETTING_NAMES) {
    const allowed = Math.min(candidate.length, upper.length) <= SHORT_NAME ? 1 : MAX_DISTANCE;
    if (Math.abs(candidate.length - upper.length) > allowed) continue;
    const distance = editDistance(upper, candidate);
    if (distance <= allowed && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function isCommon(upper: string): boolean {
  return COMMON_NAMES.has(upper) || COMMON_PREFIXES.some((p) => upper.startsWith(p));
}

const KNOWN_ELSEWHERE = new Set([...OTEL_LIBRARY_VARIABLES, ...TOOL_VARIABLES]);

/** The variables of `env` to warn about, in name order. */
export function strayVariables(env: Env): StrayVariable[] {
  const out: StrayVariable[] = [];
  for (const name of Object.keys(env).sort()) {
    if (env[name] === undefined || isSetting(name) || KNOWN_ELSEWHERE.has(name)) continue;
    const upper = name.toUpperCase();
    if (isSetting(upper)) {
      out.push({ name, suggestion: upper });
      continue;
    }
    if (upper.startsWith(OWN_PREFIX)) {
      if (isServiceLink(upper, env[name])) continue;
      const bare = upper.slice(OWN_PREFIX.length);
      const suggestion = nearestSetting(upper) ?? (isSetting(bare) ? bare : nearestSetting(bare));
      out.push(suggestion ? { name, suggestion } : { name });
      continue;
    }
    if (isCommon(upper)) continue;
    const suggestion = nearestSetting(upper);
    if (suggestion) out.push({ name, suggestion });
  }
  return out;
}

/** The warning line for one stray variable. */
export function strayMessage(stray: StrayVariable): string {
  const hint = stray.suggestion ? `did you mean ${stray.suggestion}?` : "see `bun run node --help` for the settings";
  return `${stray.name} is not a Touchline setting and is ignored: ${hint}`;
}
