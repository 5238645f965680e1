/**
 * What the scoreboard's browser tests publish: events shaped like the demo producer's, sent through a
 * node and retried on the contract's transient answers (503 while ownership moves or a node is not
 * ready), each with its own key so a retry never stores an event twice.
 */

export interface PublishBody {
  type: string;
  data?: unknown;
  state?: Record<string, unknown>;
}

/** Publishes through `baseUrl`, retrying 503s and refused connections until `timeoutMs`; returns the event's id. */
export async function publishRetrying(baseUrl: string, match: string, body: PublishBody, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const key = crypto.randomUUID();
  for (;;) {
    const res = await fetch(`${baseUrl}/matches/${match}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, key }),
    }).catch(() => undefined);
    if (res && (res.status === 201 || res.status === 200)) return ((await res.json()) as { id: string }).id;
    if (res && res.status !== 503) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
    if (Date.now() > deadline) throw new Error(`publish to ${match} kept failing`);
    await Bun.sleep(100);
  }
}

/** A match's first event: its teams and a 0-0 live state. */
export const kickoff = (home: string, away: string): PublishBody => ({
  type: "kickoff",
  data: { minute: 0, text: `${home} v ${away} is under way` },
  state: { home, away, homeScore: 0, awayScore: 0, minute: 0, status: "live" },
});
