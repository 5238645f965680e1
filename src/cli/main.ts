#!/usr/bin/env bun
/**
 * The touchline command line: `bun run touchline <command>` (or the `touchline` bin). Commands live one
 * per file; this only dispatches and turns a UsageError into exit code 2.
 */
import { EXIT_USAGE, UsageError } from "./args.ts";
import { PUBLISH_USAGE, TAIL_USAGE, TOKEN_USAGE, USAGE, VERSION_USAGE } from "./help.ts";
import { publishCommand } from "./publish.ts";
import { tailCommand } from "./tail.ts";
import { tokenCommand } from "./token.ts";
import { versionCommand } from "./version.ts";

type Command = (argv: string[], env: Record<string, string | undefined>) => Promise<number>;

const COMMANDS: Record<string, { run: Command; usage: string }> = {
  publish: { run: publishCommand, usage: PUBLISH_USAGE },
  token: { run: tokenCommand, usage: TOKEN_USAGE },
  tail: { run: tailCommand, usage: TAIL_USAGE },
  version: { run: versionCommand, usage: VERSION_USAGE },
};

export async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    console.error(USAGE);
    return EXIT_USAGE;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    const topic = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    console.log(topic ? topic.usage : USAGE);
    return 0;
  }
  if (name === "--version" || name === "-v") return await versionCommand();
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    console.error(`touchline: unknown command "${name}"\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`touchline ${name}: ${err.message}\nRun 'touchline ${name} --help' for usage.`);
    return EXIT_USAGE;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2), process.env);
}
