/** Usage texts: `touchline --help` and `touchline <command> --help`. */

const COMMON = `  --url <url>      the node (or balancer) to talk to; default $TOUCHLINE_URL, else http://127.0.0.1:3000
  --token <jwt>    bearer token; default $TOUCHLINE_TOKEN (not needed when the node runs open)`;

export const USAGE = `Usage: touchline <command> [options]

Commands:
  publish <match> <type> [json]   publish one event; prints its id
  token --publish a,b --subscribe c --ttl 1h
                                  sign a token the node accepts (TOUCHLINE_JWT_SECRET or --private-key)
  tail <match> [<match>...]       print a stream, one line per event; resumes by itself on disconnect
  version                         print the version

Run 'touchline <command> --help' for a command's options.
Exit codes: 0 done, 1 the node or the network refused, 2 a wrong command line.`;

export const PUBLISH_USAGE = `Usage: touchline publish <match> <type> [json] [options]

Publishes one event (POST /matches/<match>/events) and prints its id once JetStream has stored it.
[json] is the event's data (any JSON; '-' reads it from stdin; omitted: null).

Options:
${COMMON}
  --key <key>      idempotency key: the same key again within the dedupe window stores nothing and
                   prints the first event's id (with a note on stderr)
  --state <json>   a JSON merge patch for the match's state, e.g. '{"homeScore": 1}'
  --final          the match's last event: the match ends (streams end, later publishes get 409)
  --private        make the match private (reading it then needs a subscribe token)

Example:
  touchline publish ars-che goal '{"team": "home", "player": "Saka", "minute": 23}' --state '{"homeScore": 1}'`;

export const TOKEN_USAGE = `Usage: touchline token [--publish <matches>] [--subscribe <matches>] [options]

Signs a JWT with the claims the node checks and prints it. <matches> is a comma-separated list of
match ids, or '*' for every match.

Signing key (one is required):
  HS256 with $TOUCHLINE_JWT_SECRET (the node's secret, at least 16 characters), or
  --private-key <file>   a PEM private key whose public half the node has in TOUCHLINE_JWT_PUBLIC_KEY_FILE
                         (RSA of at least 2048 bits: RS256; EC P-256: ES256); it wins over the secret

Options:
  --publish <matches>    touchline.publish: matches the token may publish to
  --subscribe <matches>  touchline.subscribe: private matches the token may read
  --ttl <duration>       lifetime: 90s, 30m, 1h (default), 7d, or 'none' for a token that never expires
  --subject <sub>        the token's sub (default touchline-cli); logs and per-token limits use it
  --issuer <iss>         default $TOUCHLINE_JWT_ISSUER (set it when the node checks iss)
  --audience <aud>       default $TOUCHLINE_JWT_AUDIENCE (set it when the node checks aud)

Example:
  export TOUCHLINE_TOKEN=$(touchline token --publish ars-che,liv-eve --ttl 2h)`;

export const TAIL_USAGE = `Usage: touchline tail <match> [<match>...] [options]

Follows the stream of one match (GET /matches/<match>/events) or several (GET /events?match=...) and
prints one line per event on stdout:
  <id> <match> <type> <data as JSON>          (a snapshot prints its state)
Connection changes, the server's own events (touchline.*) and errors go to stderr. A lost connection
is resumed from the last id (no event missed or repeated). Ctrl-C stops and prints the id to resume from.
Exits 0 when every match followed has ended (a final event).

Options:
${COMMON}
  --from <id>      resume after this id (sent as Last-Event-ID) instead of starting with a snapshot
  --json           one JSON object per line: {"type", "id", "match", "data", "ts", "state"?} or a snapshot
                   {"type": "snapshot", "id", "match", "state"}
  --quiet, -q      nothing on stderr but errors`;

export const VERSION_USAGE = `Usage: touchline version

Prints the version of the touchline package.`;
