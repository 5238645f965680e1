/** `touchline version`: the version in package.json, alone on a line. */
import { readFileSync } from "node:fs";
import { EXIT_OK, HELP_OPTION, parse, UsageError } from "./args.ts";
import { VERSION_USAGE } from "./help.ts";

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
  return String(pkg.version);
}

export async function versionCommand(argv: string[] = []): Promise<number> {
  const { values, positionals } = parse(argv, HELP_OPTION);
  if (values.help) {
    console.log(VERSION_USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  console.log(packageVersion());
  return EXIT_OK;
}
