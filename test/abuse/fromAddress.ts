/**
 * Requests from a chosen source address, so a test can be several clients at once. On Linux the whole
 * 127.0.0.0/8 is local: a socket bound to 127.0.0.7 before connecting to a node on 127.0.0.1 makes the
 * node see 127.0.0.7 as its peer (without the bind, connecting even to 127.0.0.2 comes from 127.0.0.1:
 * checked). `Bun.connect` cannot bind a source address, but `node:net` can (`localAddress`), so these
 * open the socket with it and read the answer with the same reader as test/helpers/sse.ts.
 */
import net from "node:net";
import type { Socket } from "bun";
import { SseConnection, untilHead } from "../helpers/sse.ts";

const CRLF = "\r\n";
const HEAD_TIMEOUT_MS = 10_000;

/** Lets SseConnection drive a node:net socket (it calls end, pause, resume and terminate). */
function asBunSocket(s: net.Socket): Socket<undefined> {
  const adapter = {
    end: () => s.end(),
    pause: () => s.pause(),
    resume: () => s.resume(),
    terminate: () => s.destroy(),
  };
  return adapter as unknown as Socket<undefined>;
}

export interface FromOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Wait for the response head (default true). */
  waitForHead?: boolean;
  /** Bytes sent before the request (a PROXY protocol header). */
  preamble?: Uint8Array;
}

/** Sends one HTTP/1.1 request from `localAddress` and reads the answer as it arrives. */
export async function requestFrom(localAddress: string, url: string, opts: FromOptions = {}): Promise<SseConnection> {
  const u = new URL(url);
  const conn = new SseConnection();
  const headers: Record<string, string> = { host: u.host, ...opts.headers };
  if (opts.body !== undefined) headers["content-length"] = String(Buffer.byteLength(opts.body));
  let head = `${opts.method ?? "GET"} ${u.pathname}${u.search} HTTP/1.1${CRLF}`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}${CRLF}`;
  head += CRLF;
  const socket = net.connect({ host: u.hostname, port: Number(u.port), localAddress });
  socket.on("data", (bytes: Buffer) => conn.onBytes(bytes));
  socket.on("end", () => conn.onClose());
  socket.on("close", () => conn.onClose());
  socket.on("error", () => conn.onClose());
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  conn.attach(asBunSocket(socket));
  if (opts.preamble) socket.write(opts.preamble);
  socket.write(head + (opts.body ?? ""));
  if (opts.waitForHead !== false) await untilHead(conn, `${opts.method ?? "GET"} ${url} from ${localAddress}`, HEAD_TIMEOUT_MS);
  return conn;
}

/** Opens an event stream from `localAddress` (Accept: text/event-stream). */
export function openSseFrom(localAddress: string, url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  return requestFrom(localAddress, url, { headers: { accept: "text/event-stream", ...headers } });
}

/** Publishes from `localAddress`; resolves with the whole answer. */
export async function publishFrom(
  localAddress: string,
  baseUrl: string,
  match: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<SseConnection> {
  const conn = await requestFrom(localAddress, `${baseUrl}/matches/${match}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", connection: "close", ...headers },
    body: JSON.stringify(body),
  });
  await conn.until(() => conn.isEnded, HEAD_TIMEOUT_MS, "the publish answer");
  return conn;
}

/** The whole answer of a request that is not a stream (an error's JSON), from `localAddress`. */
export async function answerFrom(localAddress: string, url: string, opts: FromOptions = {}): Promise<SseConnection> {
  const conn = await requestFrom(localAddress, url, { ...opts, headers: { connection: "close", ...opts.headers } });
  await conn.until(() => conn.isEnded || conn.status === 200, HEAD_TIMEOUT_MS, "an answer");
  return conn;
}
