/**
 * The fault proxy against a tiny echo server: bytes pass; a black hole holds bytes and closes both ways
 * (also for connections opened during it) and delivers them at the heal; a cut closes current
 * connections, and with `refuse` new ones too until the heal.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { startFaultProxy, type FaultProxy } from "../helpers/faultProxy.ts";

/** An echo server that also records what it received and which connections it saw close. */
class EchoServer {
  received = "";
  accepted = 0;
  closed = 0;
  readonly sockets = new Set<Socket<undefined>>();
  readonly listener: TCPSocketListener<undefined>;

  constructor() {
    const self = this;
    this.listener = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          self.accepted++;
          self.sockets.add(s);
        },
        data(s, chunk) {
          self.received += chunk.toString();
          s.write(chunk);
        },
        close(s) {
          self.closed++;
          self.sockets.delete(s);
        },
      },
    });
  }

  /** Speaks first, to every open connection (the server-to-client direction on its own). */
  push(text: string): void {
    for (const s of this.sockets) s.write(text);
  }

  stop(): void {
    this.listener.stop(true);
  }
}

/** A client connection that records what it received and whether it saw a close. */
interface Client {
  text: () => string;
  closed: () => boolean;
  write(s: string): void;
  end(): void;
}

async function dial(port: number): Promise<Client> {
  let text = "";
  let closed = false;
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        text += chunk.toString();
      },
      close() {
        closed = true;
      },
    },
  });
  return { text: () => text, closed: () => closed, write: (s) => void sock.write(s), end: () => sock.end() };
}

async function until(check: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** Long enough for any byte that could cross to have crossed on loopback. */
const QUIET_MS = 300;

let echo: EchoServer;
let proxy: FaultProxy;

function setUp(): void {
  echo = new EchoServer();
  proxy = startFaultProxy({ target: { host: "127.0.0.1", port: echo.listener.port } });
}

afterEach(() => {
  proxy?.stop();
  echo?.stop();
});

describe("fault proxy", () => {
  test("pass: bytes cross both ways", async () => {
    setUp();
    const c = await dial(proxy.port);
    c.write("hello");
    await until(() => c.text() === "hello", "the echo");
    echo.push("!");
    await until(() => c.text() === "hello!", "the server's own bytes");
    expect(proxy.connections()).toBe(1);
  });

  test("black hole: nothing crosses either way until the heal, then everything in order", async () => {
    setUp();
    const c = await dial(proxy.port);
    c.write("a");
    await until(() => c.text() === "a", "the echo before the fault");
    proxy.blackhole();
    c.write("b");
    echo.push("X");
    c.write("c");
    await Bun.sleep(QUIET_MS);
    expect(echo.received).toBe("a");
    expect(c.text()).toBe("a");
    expect(c.closed()).toBe(false);
    proxy.heal();
    // The server got b and c in order; the client gets X and the echoes (X may land anywhere after a).
    await until(() => echo.received === "abc" && c.text().length === 4, "the held bytes");
    expect(c.text().replace("X", "")).toBe("abc");
  });

  test("black hole: a connection opened during it is accepted but hears nothing until the heal", async () => {
    setUp();
    proxy.blackhole();
    const c = await dial(proxy.port);
    c.write("late");
    await Bun.sleep(QUIET_MS);
    expect(echo.accepted).toBe(0);
    expect(c.text()).toBe("");
    expect(c.closed()).toBe(false);
    proxy.heal();
    await until(() => c.text() === "late", "the echo after the heal");
    expect(echo.accepted).toBe(1);
  });

  test("black hole: a close is held like data and delivered after the bytes before it", async () => {
    setUp();
    const c = await dial(proxy.port);
    c.write("x");
    await until(() => c.text() === "x", "the echo before the fault");
    proxy.blackhole();
    c.write("y");
    c.end();
    await Bun.sleep(QUIET_MS);
    expect(echo.closed).toBe(0);
    expect(echo.received).toBe("x");
    proxy.heal();
    await until(() => echo.closed === 1, "the close after the heal");
    expect(echo.received).toBe("xy");
  });

  test("cut: current connections close on both sides, new ones pass", async () => {
    setUp();
    const c = await dial(proxy.port);
    c.write("1");
    await until(() => c.text() === "1", "the echo");
    proxy.cut();
    await until(() => c.closed() && echo.closed === 1, "both sides closed");
    expect(proxy.connections()).toBe(0);
    const d = await dial(proxy.port);
    d.write("2");
    await until(() => d.text() === "2", "a new connection's echo");
  });

  test("target down: a new connection is closed, as a refusal would be", async () => {
    setUp();
    echo.stop();
    const c = await dial(proxy.port);
    await until(() => c.closed(), "the connection closed");
    expect(proxy.connections()).toBe(0);
  });

  test("cut with refuse: new connections are closed on arrival until the heal", async () => {
    setUp();
    const c = await dial(proxy.port);
    proxy.cut({ refuse: true });
    await until(() => c.closed(), "the current connection closed");
    const refused = await dial(proxy.port);
    refused.write("no");
    await until(() => refused.closed(), "the new connection closed");
    expect(echo.accepted).toBe(1);
    proxy.heal();
    const d = await dial(proxy.port);
    d.write("yes");
    await until(() => d.text() === "yes", "the echo after the heal");
  });
});
