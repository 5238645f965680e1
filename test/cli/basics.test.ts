/**
 * The CLI's frame: `--help` (and each command's), `version` through the package script and the bin
 * entry's target, exit codes for a wrong command line.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { cli, ROOT } from "./cli.ts";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string; bin: Record<string, string>; scripts: Record<string, string> };

describe("touchline CLI basics", () => {
  test("--help lists every command and exits 0", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    for (const command of ["publish <match> <type> [json]", "token --publish", "tail <match>", "version"]) expect(r.stdout).toContain(command);
  });

  test.each(["publish", "token", "tail", "version"])("%s --help prints its usage and exits 0", async (command) => {
    const r = await cli([command, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`Usage: touchline ${command}`);
    expect((await cli(["help", command])).stdout).toBe(r.stdout);
  });

  test("version prints package.json's version, through `bun run touchline` too", async () => {
    const r = await cli(["version"]);
    expect(r).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    expect((await cli(["--version"])).stdout).toBe(`${pkg.version}\n`);
    const viaScript = Bun.spawnSync([process.execPath, "run", "touchline", "version"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect(viaScript.exitCode).toBe(0);
    expect(viaScript.stdout.toString()).toBe(`${pkg.version}\n`);
  });

  test("the bin entry is the CLI, executable with a bun shebang", () => {
    const target = join(ROOT, pkg.bin.touchline!);
    expect(readFileSync(target, "utf8")).toStartWith("#!/usr/bin/env bun\n");
    expect(statSync(target).mode & 0o111).not.toBe(0);
    expect(pkg.scripts.touchline).toBe(`bun run ${pkg.bin.touchline}`);
  });

  test("no command, an unknown command or an unknown option: usage on stderr, exit 2", async () => {
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("Usage: touchline <command>");
    const unknown = await cli(["pubish", "m", "goal"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "pubish"');
    const option = await cli(["version", "--bogus"]);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("--bogus");
    expect(option.stderr).toContain("touchline version --help");
  });
});
