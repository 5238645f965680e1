/**
 * `touchline tail <match> [<match>...]`: follows one stream with the typed client (TouchlineStream), one
 * line per event on stdout. The client reconnects and resumes from the last id by itself; this command
 * only prints, reports the connection on stderr, and stops on Ctrl-C (printing where to resume) or when
 * every match it follows has ended.
 */
import {
  matchStreamUrl,
  multiStreamUrl,
  TouchlineStream,
  type AnyStreamEvent,
  type EventDataMap,
  type FetchLike,
  type Json,
  type StateChange,
} from "../client/index.ts";
import { MATCH_ID } from "../match/event.ts";
import { TAIL_USAGE } from "./help.ts";
import { bearerToken, EXIT_FAILED, EXIT_OK, HELP_OPTION, nodeUrl, parse, TOKEN_OPTION, URL_OPTION, UsageError, type Env } from "./args.ts";

const OPTIONS = {
  ...URL_OPTION,
  ...TOKEN_OPTION,
  ...HELP_OPTION,
  from: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
} as const;

const END_EVENT = "touchline.end";
const NO_CONTENT = 204;

type Event = AnyStreamEvent<EventDataMap, Record<string, Json>>;

/** One line of output; undefined for the server's own events (stderr). */
function lineOf(event: Event, json: boolean): string | undefined {
  if (event.type.startsWith("touchline.")) return undefined;
  if (json) return JSON.stringify(event);
  if (event.type === "snapshot") {
    const s = event as Extract<Event, { type: "snapshot" }>;
    return `${s.id || "-"} ${s.match} snapshot ${JSON.stringify(s.state)}`;
  }
  const e = event as Extract<Event, { match: string; data: unknown }>;
  return `${e.id} ${e.match} ${e.type} ${JSON.stringify(e.data)}`;
}

export async function tailCommand(argv: string[], env: Env): Promise<number> {
  const { values, positionals: matches } = parse(argv, OPTIONS);
  if (values.help) {
    console.log(TAIL_USAGE);
    return EXIT_OK;
  }
  if (matches.length === 0) throw new UsageError("give at least one match: touchline tail <match> [<match>...]");
  const bad = matches.find((m) => !MATCH_ID.test(m));
  if (bad !== undefined) throw new UsageError(`"${bad}" is not a match id ([A-Za-z0-9_-], 1 to 64 characters)`);
  const base = nodeUrl(values.url, env);
  let url: string;
  try {
    url = matches.length === 1 ? matchStreamUrl(base, matches[0]!) : multiStreamUrl(base, [...new Set(matches)]);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const token = bearerToken(values.token, env);
  const quiet = values.quiet === true;
  const say = (line: string) => {
    if (!quiet) console.error(line);
  };

  const ended = new Set<string>();
  let endedForGood = false; // 204: a resume at or after the final event(s)
  let failure: Error | undefined;
  let stoppedBySignal = false;
  // Only watches statuses: a 204 means every match of the stream has ended (docs/design.md, matches end).
  const watchingFetch: FetchLike = async (input, init) => {
    const res = await fetch(input, init);
    if (res.status === NO_CONTENT) endedForGood = true;
    return res;
  };

  const stream = new TouchlineStream<EventDataMap, Record<string, Json>>(url, {
    ...(values.from !== undefined && { lastEventId: values.from }),
    ...(token !== undefined && { token }),
    fetch: watchingFetch,
    onStateChange: (change: StateChange) => {
      if (change.state === "open") say(`connected to ${url}${stream.lastEventId ? ` (resuming after ${stream.lastEventId})` : ""}`);
      else if (change.state === "reconnecting") say(`reconnecting in ${Math.round(change.delayMs ?? 0)} ms (attempt ${change.attempt})`);
      else if (change.state === "closed" && change.error && !endedForGood) failure = change.error;
    },
    onError: (error) => say(`${error.message}`),
  });
  stream.onAny((event) => {
    const line = lineOf(event, values.json === true);
    if (line !== undefined) {
      console.log(line);
      return;
    }
    say(`${event.type} ${JSON.stringify((event as { data?: Json }).data ?? null)}`);
    if (event.type === END_EVENT) {
      const match = (event as { data?: { match?: unknown } }).data?.match;
      if (typeof match === "string") ended.add(match);
      if (matches.every((m) => ended.has(m))) stream.close();
    }
  });

  const stop = () => {
    stoppedBySignal = true;
    stream.close();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    await stream.done;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }

  const resume = stream.lastEventId ? `touchline tail ${matches.join(" ")} --from '${stream.lastEventId}'` : undefined;
  if (stoppedBySignal) {
    say(resume ? `stopped; resume with: ${resume}` : "stopped");
    return EXIT_OK;
  }
  if (failure) {
    console.error(`touchline tail: ${failure.message}`);
    if (resume) console.error(`resume with: ${resume}`);
    return EXIT_FAILED;
  }
  say(matches.length === 1 ? `match ${matches[0]} has ended` : "every match has ended");
  return EXIT_OK;
}
