// The SSE broadcast server the Node tutorials teach, as a benchmark peer: a plain `http` server
// holding a Set of open responses per channel and an EventEmitter that broadcasts each published
// message with one `res.write` per client. No replay: a reconnecting client misses what was sent
// while it was away.
//   GET  /sub/<channel>  -> text/event-stream
//   POST /pub/<channel>  JSON body -> 201 {"id"}, relayed as the event's data
import http from "node:http";
import { EventEmitter } from "node:events";

const PORT = Number(process.env.PORT ?? 8080);
const HOST = process.env.HOST ?? "0.0.0.0";
const SUBSCRIBE = /^\/sub\/([A-Za-z0-9_-]{1,64})$/;
const PUBLISH = /^\/pub\/([A-Za-z0-9_-]{1,64})$/;
const MAX_BODY_BYTES = 64 * 1024;

const subscribers = new Map(); // channel -> Set<http.ServerResponse>
const lastIds = new Map(); // channel -> number
const bus = new EventEmitter();

bus.on("message", (channel, message) => {
  const id = (lastIds.get(channel) ?? 0) + 1;
  lastIds.set(channel, id);
  const clients = subscribers.get(channel);
  if (clients === undefined) return;
  const frame = `id: ${id}\ndata: ${JSON.stringify(message)}\n\n`;
  for (const res of clients) res.write(frame);
});

function subscribe(channel, req, res) {
  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    Connection: "keep-alive",
  });
  res.flushHeaders();
  let clients = subscribers.get(channel);
  if (clients === undefined) {
    clients = new Set();
    subscribers.set(channel, clients);
  }
  clients.add(res);
  req.on("close", () => {
    clients.delete(res);
    if (clients.size === 0) subscribers.delete(channel);
  });
}

function publish(channel, req, res) {
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  req.on("end", () => {
    let message;
    try {
      if (size > MAX_BODY_BYTES) throw new Error("too large");
      message = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      res.writeHead(400, { "Content-Type": "application/json" }).end('{"error":"bad_request"}');
      return;
    }
    bus.emit("message", channel, message);
    res.writeHead(201, { "Content-Type": "application/json" }).end(JSON.stringify({ id: String(lastIds.get(channel)) }));
  });
}

const server = http.createServer((req, res) => {
  const path = (req.url ?? "/").split("?")[0];
  let match;
  if (req.method === "GET" && (match = SUBSCRIBE.exec(path)) !== null) return subscribe(match[1], req, res);
  if (req.method === "POST" && (match = PUBLISH.exec(path)) !== null) return publish(match[1], req, res);
  res.writeHead(404, { "Content-Type": "application/json" }).end('{"error":"not_found"}');
});
// An SSE response never completes; Node's request timeout only covers receiving the request.
server.listen(PORT, HOST, () => console.log(`node-pattern listening on ${HOST}:${PORT}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
