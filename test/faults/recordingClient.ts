/**
 * A client as a browser would be: a stock EventSource (the `eventsource` package) with no reconnection
 * logic of ours. It reconnects only as the spec makes it (after a 200 stream ends or drops, with the
 * server's `retry:` and its own Last-Event-ID); any non-200 answer ends it for good, which is recorded
 * as giving up. It asks for `?hello=1` so each connection names the node serving it.
 *
 * An EventSource dispatches only named listeners, so the event types the publisher uses are passed in;
 * anything else unnamed arrives as `message` and is recorded as an event too.
 */
import { EventSource } from "eventsource";
import type { ClientHistory } from "./history.ts";

const HELLO = "touchline.hello";

export class RecordingClient {
  readonly history: ClientHistory;
  private readonly es: EventSource;

  constructor(name: string, baseUrl: string, match: string, eventTypes: readonly string[]) {
    this.history = { name, match, deliveries: [], connections: [], drops: 0, gaveUp: undefined };
    const h = this.history;
    this.es = new EventSource(`${baseUrl}/matches/${match}/events?hello=1`);
    this.es.addEventListener("open", () => h.connections.push({ openedAt: Date.now(), node: undefined }));
    this.es.addEventListener(HELLO, (e) => {
      const last = h.connections.at(-1);
      if (last) last.node = (JSON.parse(e.data) as { node: string }).node;
    });
    this.es.addEventListener("snapshot", (e) => h.deliveries.push({ kind: "snapshot", id: e.lastEventId || null, type: "snapshot", at: Date.now() }));
    for (const type of [...eventTypes, "message"]) {
      this.es.addEventListener(type, (e) => h.deliveries.push({ kind: "event", id: e.lastEventId || null, type, at: Date.now() }));
    }
    this.es.addEventListener("touchline.refused", () => {
      const last = h.connections.at(-1);
      if (last) last.refused = true;
    });
    this.es.addEventListener("error", (e) => {
      // CLOSED after an error: the EventSource will not try again (what a browser's would do too).
      if (this.es.readyState === EventSource.CLOSED) h.gaveUp = { at: Date.now(), reason: (e as { message?: string }).message ?? "error" };
      else h.drops++;
    });
  }

  close(): void {
    this.es.close();
  }
}
