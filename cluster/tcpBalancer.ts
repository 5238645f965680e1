/**
 * A plain L4 (TCP) round-robin proxy: each accepted connection is spliced to one backend, bytes pass
 * untouched both ways. It stands in for haproxy when haproxy is not installed (`bun run cluster`) and is
 * the entry port of the test cluster. It knows nothing of HTTP, which is the point: like a cloud L4
 * balancer it cannot make sessions sticky, so the nodes must serve any match from any node.
 * The splicing itself (and its backpressure) is src/net/tcpSplice.ts.
 */
import type { TCPSocketListener } from "bun";
import { Splice, connectUpstream } from "../src/net/tcpSplice.ts";

export interface Backend {
  host: string;
  port: number;
}

export interface TcpBalancerOptions {
  port: number;
  hostname: string;
  /** Asked on every new connection, so the backend set may change while the balancer runs. */
  backends: () => Backend[];
}

export interface TcpBalancer {
  stop(): void;
  port: number;
}

export function startTcpBalancer(opts: TcpBalancerOptions): TcpBalancer {
  const live = new Set<Splice>();
  let next = 0;

  /** Tries each backend once, starting at the round-robin cursor; a refused one is skipped. */
  const connect = async (splice: Splice): Promise<void> => {
    const backends = opts.backends();
    const start = next++;
    for (let i = 0; i < backends.length; i++) {
      const b = backends[(start + i) % backends.length]!;
      const upstream = await connectUpstream(splice, b.host, b.port);
      if (upstream) {
        splice.attach(upstream);
        return;
      }
    }
    splice.client.terminate();
  };

  const listener: TCPSocketListener<Splice> = Bun.listen<Splice>({
    hostname: opts.hostname,
    port: opts.port,
    socket: {
      binaryType: "uint8array",
      open(client) {
        const splice = new Splice(client, (s) => live.delete(s));
        client.data = splice;
        live.add(splice);
        void connect(splice);
      },
      data(client, chunk) {
        client.data.fromClient(chunk);
      },
      drain(client) {
        client.data.drained(client);
      },
      close(client) {
        client.data.close();
      },
      error(client) {
        client.data.close();
      },
    },
  });

  return {
    port: listener.port,
    stop() {
      listener.stop(true);
      for (const s of live) s.abort();
      live.clear();
    },
  };
}
