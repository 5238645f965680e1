/**
 * A bare `Bun.serve` broadcast loop, the floor any Bun server can reach: one ReadableStream per
 * subscriber, each published message encoded once and enqueued to every subscriber of the
 * channel. No ids kept, no replay, no caps.
 *   GET  /sub/<channel>  -> text/event-stream
 *   POST /pub/<channel>  JSON body -> 201 {"id"}, relayed as the event's data
 */
const PORT = Number(process.env.PORT ?? 8080);
const HOST = process.env.HOST ?? "0.0.0.0";
const SUBSCRIBE = /^\/sub\/([A-Za-z0-9_-]{1,64})$/;
const PUBLISH = /^\/pub\/([A-Za-z0-9_-]{1,64})$/;
const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
};
/** Sent at once so the response head leaves without waiting for the first event. */
const OPENING_COMMENT = new TextEncoder().encode(": open\n\n");

type Controller = ReadableStreamDefaultController<Uint8Array>;
const subscribers = new Map<string, Set<Controller>>();
const lastIds = new Map<string, number>();
const encoder = new TextEncoder();

function subscribe(channel: string): Response {
  let clients = subscribers.get(channel);
  if (clients === undefined) {
    clients = new Set();
    subscribers.set(channel, clients);
  }
  const set = clients;
  let mine: Controller | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      mine = controller;
      set.add(controller);
      controller.enqueue(OPENING_COMMENT);
    },
    cancel() {
      if (mine !== undefined) set.delete(mine);
    },
  });
  return new Response(body, { headers: SSE_HEADERS });
}

async function publish(channel: string, request: Request): Promise<Response> {
  let message: unknown;
  try {
    message = await request.json();
  } catch {
    return Response.json({ error: "bad_request" }, { status: 400 });
  }
  const id = (lastIds.get(channel) ?? 0) + 1;
  lastIds.set(channel, id);
  const frame = encoder.encode(`id: ${id}\ndata: ${JSON.stringify(message)}\n\n`);
  for (const controller of subscribers.get(channel) ?? []) {
    try {
      controller.enqueue(frame);
    } catch {
      subscribers.get(channel)?.delete(controller);
    }
  }
  return Response.json({ id: String(id) }, { status: 201 });
}

Bun.serve({
  port: PORT,
  hostname: HOST,
  idleTimeout: 0,
  reusePort: false,
  fetch(request) {
    const path = new URL(request.url).pathname;
    let match: RegExpExecArray | null;
    if (request.method === "GET" && (match = SUBSCRIBE.exec(path)) !== null) return subscribe(match[1] as string);
    if (request.method === "POST" && (match = PUBLISH.exec(path)) !== null) return publish(match[1] as string, request);
    return Response.json({ error: "not_found" }, { status: 404 });
  },
});
console.log(`bare-bun listening on ${HOST}:${PORT}`);
