/**
 * A git ref of this repository checked out beside the working tree, for the A/B scripts that run a base
 * version of the node against this tree's (publishCost.ts, channelsAB.ts). The worktree shares this
 * tree's node_modules (a link) and is removed by `remove`.
 */
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./peers/server-process.ts";

export interface BaseWorktree {
  /** The checkout, ending in a slash as REPO_ROOT does. */
  dir: string;
  /** The ref's short commit id. */
  commit: string;
  remove(): Promise<void>;
}

export async function checkOutBase(ref: string): Promise<BaseWorktree> {
  const commit = await git(["rev-parse", "--short", ref]);
  const dir = mkdtempSync(join(tmpdir(), "touchline-base-"));
  await git(["worktree", "add", "--detach", dir, ref]);
  symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
  return {
    dir: `${dir}/`,
    commit,
    remove: () =>
      git(["worktree", "remove", "--force", dir]).then(
        () => {},
        () => rmSync(dir, { recursive: true, force: true }),
      ),
  };
}

/** `--this-env=NAME=value` (repeatable): settings for this tree's node only, to weigh one against the base. */
export function thisEnvArgs(): Record<string, string> {
  return Object.fromEntries(
    process.argv
      .filter((a) => a.startsWith("--this-env="))
      .map((a) => {
        const [name, ...value] = a.slice("--this-env=".length).split("=");
        return [name as string, value.join("=")];
      }),
  );
}

/** How a run labels this tree: with the settings given to it alone, if any. */
export function thisTreeLabel(env: Record<string, string>): string {
  const settings = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return settings.length > 0 ? `this tree (${settings.join(" ")})` : "this tree";
}

async function git(args: string[]): Promise<string> {
  const proc = Bun.spawn(["git", ...args], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`git ${args.join(" ")}: ${err.trim()}`);
  return out.trim();
}
