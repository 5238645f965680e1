/**
 * A load-generator process: reads commands (JSON lines) on stdin, answers on stdout, and exits
 * when stdin closes. Started by the bench through launch.sh, which raises the open-file limit and
 * pins it to the generator's cores.
 */
import type { Command, Reply, ReplyBody } from "./protocol.ts";
import { SubscriberFleet } from "./subscriber-fleet.ts";

const fleet = new SubscriberFleet();

async function handle(command: Command): Promise<ReplyBody> {
  switch (command.cmd) {
    case "open":
      return fleet.open(
        { hosts: command.hosts, ports: command.ports, pathTemplate: command.pathTemplate, resume: command.resume },
        command.groups,
        command.timeoutMs,
      );
    case "reset":
      fleet.reset();
      return {};
    case "await":
      return fleet.awaitFinals(command.finals, command.timeoutMs);
    case "storm":
      return fleet.storm(command.timeoutMs);
    case "close":
      return { closed: await fleet.closeAll(command.timeoutMs) };
  }
}

function send(reply: Reply): void {
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}

for await (const line of console) {
  if (line.trim() === "") continue;
  const command = JSON.parse(line) as Command;
  // Commands run one at a time: the orchestrator waits for each reply before the next command.
  try {
    send({ id: command.id, ok: true, body: await handle(command) });
  } catch (error) {
    send({ id: command.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}
process.exit(0);
