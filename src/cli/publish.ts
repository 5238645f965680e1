/** `touchline publish <match> <type> [json]`: one event through the typed client; prints its id. */
import { publish, TouchlineHttpError, type PublishEvent } from "../client/index.ts";
import { EVENT_TYPE, isReservedType, MATCH_ID } from "../match/event.ts";
import { PUBLISH_USAGE } from "./help.ts";
import {
  bearerToken,
  EXIT_FAILED,
  EXIT_OK,
  HELP_OPTION,
  networkMessage,
  nodeUrl,
  parse,
  parseJson,
  readStdin,
  TOKEN_OPTION,
  URL_OPTION,
  UsageError,
  type Env,
} from "./args.ts";

const OPTIONS = {
  ...URL_OPTION,
  ...TOKEN_OPTION,
  ...HELP_OPTION,
  key: { type: "string" },
  state: { type: "string" },
  final: { type: "boolean" },
  private: { type: "boolean" },
} as const;

/** The publish body; `final` is part of the HTTP contract (docs/design.md, matches end). */
type Body = PublishEvent & { final?: boolean };

export async function publishCommand(argv: string[], env: Env): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS);
  if (values.help) {
    console.log(PUBLISH_USAGE);
    return EXIT_OK;
  }
  const [match, type, json, ...extra] = positionals;
  if (match === undefined || type === undefined) throw new UsageError("give a match and an event type: touchline publish <match> <type> [json]");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" (quote the JSON data so it is one argument)`);
  if (!MATCH_ID.test(match)) throw new UsageError(`"${match}" is not a match id ([A-Za-z0-9_-], 1 to 64 characters)`);
  if (!EVENT_TYPE.test(type)) throw new UsageError(`"${type}" is not an event type (a letter, then letters, digits, _ . -; at most 64)`);
  if (isReservedType(type)) throw new UsageError(`"${type}" is reserved for the server (snapshot, touchline.*)`);
  const url = nodeUrl(values.url, env);
  const body: Body = {
    type,
    data: json === undefined ? null : parseJson(json === "-" ? await readStdin() : json, "the data"),
  };
  if (values.state !== undefined) body.state = parseJson(values.state, "--state");
  if (values.key !== undefined) body.key = values.key;
  if (values.final) body.final = true;
  if (values.private) body.private = true;
  const token = bearerToken(values.token, env);
  try {
    const answer = await publish(url, match, body, token ? { token } : {});
    console.log(answer.id);
    if (answer.duplicate) console.error(`touchline publish: key "${values.key}" was seen before: nothing stored; that is the first event's id`);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof TouchlineHttpError) {
      const wait = err.retryAfterMs !== undefined ? ` (retry after ${Math.ceil(err.retryAfterMs / 1000)} s)` : "";
      console.error(`touchline publish: ${err.status} ${err.code}: ${err.message}${wait}`);
    } else {
      console.error(`touchline publish: ${networkMessage(err, url)}`);
    }
    return EXIT_FAILED;
  }
}
