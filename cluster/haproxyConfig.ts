/**
 * Renders the local haproxy config from cluster/haproxy.cfg, the one file compose mounts as it is.
 * The template marks the parts that differ between the two topologies with `# >>> name` / `# <<< name`
 * comment lines; rendering replaces those blocks and keeps every other line verbatim, so a change to
 * timeouts, checks or balancing applies to both.
 */
import { join } from "node:path";
import type { Backend } from "./tcpBalancer.ts";

export const HAPROXY_TEMPLATE_PATH = join(import.meta.dir, "haproxy.cfg");

const BLOCK_START = /^# >>> ([a-z-]+)\s*$/;
const BLOCK_END = /^# <<< ([a-z-]+)\s*$/;
const INDENT = "    ";

/** The named blocks of a template and their lines (markers excluded). */
export function templateBlocks(template: string): Map<string, string[]> {
  const blocks = new Map<string, string[]>();
  let open: string | undefined;
  for (const line of template.split("\n")) {
    const start = BLOCK_START.exec(line);
    const end = BLOCK_END.exec(line);
    if (start) {
      if (open) throw new Error(`haproxy template: block "${start[1]}" opens inside "${open}"`);
      open = start[1]!;
      blocks.set(open, []);
    } else if (end) {
      if (end[1] !== open) throw new Error(`haproxy template: block "${end[1]}" closes but "${open ?? "none"}" is open`);
      open = undefined;
    } else if (open) {
      blocks.get(open)!.push(line);
    }
  }
  if (open) throw new Error(`haproxy template: block "${open}" is never closed`);
  return blocks;
}

/** Replaces each named block with the given lines; every block of the template must be given. */
export function replaceBlocks(template: string, replacements: Record<string, string[]>): string {
  const names = [...templateBlocks(template).keys()];
  for (const name of names) if (!(name in replacements)) throw new Error(`haproxy template: no replacement for block "${name}"`);
  for (const name of Object.keys(replacements)) if (!names.includes(name)) throw new Error(`haproxy template: no block "${name}"`);
  const out: string[] = [];
  let skipping = false;
  for (const line of template.split("\n")) {
    const start = BLOCK_START.exec(line);
    if (start) {
      skipping = true;
      out.push(...replacements[start[1]!]!);
    } else if (BLOCK_END.test(line)) {
      skipping = false;
    } else if (!skipping) {
      out.push(line);
    }
  }
  return out.join("\n");
}

export interface LocalHaproxyOptions {
  entryHost: string;
  entryPort: number;
  backends: (Backend & { name: string })[];
}

/** The config `bun run cluster` runs: fixed local servers instead of Docker DNS discovery. */
export function renderLocalHaproxyConfig(template: string, opts: LocalHaproxyOptions): string {
  return replaceBlocks(template, {
    "docker-dns": [],
    "entry-bind": [`${INDENT}bind ${opts.entryHost}:${opts.entryPort}`],
    servers: opts.backends.map((b) => `${INDENT}server ${b.name} ${b.host}:${b.port} check`),
  });
}
