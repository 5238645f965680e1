/**
 * `bun run node`: one Touchline node. Reads its configuration from the environment (a bad value stops it
 * with one line naming the variable), joins the cluster, serves HTTP, and drains on SIGTERM.
 */
import { ConfigError, loadConfig, type Config } from "./config/config.ts";
import { helpText } from "./config/settingsText.ts";
import { strayMessage, strayVariables } from "./config/strayVariables.ts";
import { createLogger, type Logger } from "./telemetry/logger.ts";
import { MetricsRegistry } from "./telemetry/metrics.ts";
import { createNodeMetrics, startEventLoopLagMonitor } from "./telemetry/nodeMetrics.ts";
import { initTracing } from "./telemetry/tracing.ts";
import { TouchlineNode } from "./node/touchlineNode.ts";
import { StreamRegistry } from "./stream/streamRegistry.ts";
import { ChurnCollector } from "./stream/churnCollector.ts";
import { createApp } from "./http/app.ts";
import { streamIdleSeconds } from "./http/streams.ts";
import { Cors } from "./http/cors.ts";
import { createNodeAuth } from "./auth/nodeAuth.ts";
import { startProxyFront, type ProxyFront } from "./proxy/proxyFront.ts";
import { trustsPeer } from "./limits/trustProxy.ts";

/** The event-loop lag probe fires this often; the gauge keeps the worst of the last EVENT_LOOP_LAG_WINDOW_MS. */
const EVENT_LOOP_PROBE_MS = 100;
/** A stream storm counts as over after this long without an open or a close. */
const CHURN_QUIET_MS = 500;
/** Where the HTTP server listens when the PROXY protocol front holds the public port. */
const LOOPBACK = "127.0.0.1";
/** A node stopping because its NODE_ID is taken waits this long at most for its HTTP server to close. */
const TWIN_STOP_MS = 1000;

/** `--help` / `-h`: the settings (config/settings.ts), then exit 0 without starting anything. */
function wantsHelp(args: string[]): boolean {
  return args.some((a) => a === "--help" || a === "-h");
}

function configOrExit(): { config: Config; logger: Logger } {
  try {
    const config = loadConfig(process.env);
    const logger = createLogger({ nodeId: config.nodeId, level: config.logLevel });
    // A misspelt or made-up setting would otherwise be ignored without a word: one line each.
    for (const stray of strayVariables(process.env)) {
      logger.warn(strayMessage(stray), { variable: stray.name, ...(stray.suggestion ? { didYouMean: stray.suggestion } : {}) });
    }
    return { config, logger };
  } catch (err) {
    const msg = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`touchline: ${msg}\n`);
    process.exit(2);
  }
}

/** A setting that could only be checked asynchronously (a key import) was bad: same one-line exit. */
function exitOnStartupError(err: unknown): never {
  process.stderr.write(`touchline: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}

export async function main(): Promise<void> {
  if (wantsHelp(process.argv.slice(2))) {
    process.stdout.write(helpText());
    return;
  }
  const { config, logger } = configOrExit();
  const cors = new Cors(config.security.corsOrigins);
  const auth = await createNodeAuth(config, (request) => cors.honoursCredentials(request)).catch(exitOnStartupError);
  // Tracing that cannot start (another tracer provider installed) stops the node with one line too.
  let tracing: ReturnType<typeof initTracing>;
  try {
    tracing = initTracing({ serviceName: config.serviceName, nodeId: config.nodeId, settings: config.tracing });
  } catch (err) {
    exitOnStartupError(err);
  }
  const metricsRegistry = new MetricsRegistry();
  const metrics = createNodeMetrics(metricsRegistry);
  const stopLagMonitor = startEventLoopLagMonitor(metrics.eventLoopLag, EVENT_LOOP_PROBE_MS, config.eventLoopLagWindowMs);
  if (!auth.access.enabled) {
    logger.warn(
      "neither TOUCHLINE_JWT_SECRET nor TOUCHLINE_JWT_PUBLIC_KEY_FILE is set: publishing and private matches are open to anyone who can reach this node",
    );
  }

  const churn =
    config.collectAfterStreamChurn > 0
      ? new ChurnCollector({
          threshold: config.collectAfterStreamChurn,
          quietMs: CHURN_QUIET_MS,
          collect: () => {
            const started = performance.now();
            // Concurrent (false): a forced synchronous collection held the loop for 130-280 ms at
            // 20,000 matches and 10,000 streams; this one asks JSC to collect now, beside the loop.
            Bun.gc(false);
            logger.debug("collected garbage after stream churn", { ms: Math.round(performance.now() - started), streams: registry.size });
          },
        })
      : undefined;
  const registry = new StreamRegistry({
    maxConnections: config.maxConnections,
    heartbeatMs: config.heartbeatMs,
    bufferCap: config.clientBufferBytes,
    bufferCeiling: config.clientBufferCeilingBytes,
    slowGraceMs: config.slowClientGraceMs,
    retryMs: config.retryMs,
    maxStreamAgeMs: config.maxStreamAgeMs,
    onOpened: () => {
      churn?.note();
      metrics.streamsOpened.inc();
      metrics.streamsOpen.inc();
    },
    onClosed: (reason) => {
      churn?.note();
      metrics.streamsOpen.dec();
      metrics.streamsClosed[reason].inc();
    },
    // One JSON line and one count per cut, nothing else (the stream's close is silent).
    onSlowCut: (cut) => {
      metrics.slowClientsCut.inc();
      logger.info("slow client cut off (it resumes by id)", {
        unsentBytes: cut.unsentBytes,
        overMs: cut.overMs,
        pastCeiling: cut.pastCeiling,
        cap: config.clientBufferBytes,
        graceMs: config.slowClientGraceMs,
      });
    },
  });

  metrics.streamsMax.set(config.maxConnections);
  const tls = config.security.tls;
  const scheme = tls ? "https" : "http";
  const node = new TouchlineNode({ config, logger, metrics, tracing, advertisedUrl: `${scheme}://${config.advertisedHost}:${config.port}` });

  // PROXY_PROTOCOL: a front (src/proxy) holds the public port and splices to the server on loopback.
  const proxied = config.limits.proxyProtocol;
  const idleSeconds = streamIdleSeconds(config.heartbeatMs);
  let front: ProxyFront | undefined;
  const app = createApp({
    node,
    registry,
    metricsRegistry,
    metrics,
    logger,
    auth,
    cors,
    ...(proxied ? { proxiedSource: (port: number) => front?.sourceOf(port) } : {}),
  });
  // The listener comes up first so /healthz answers while we join; /readyz stays 503 until joined.
  app.listen({
    port: proxied ? 0 : config.port,
    hostname: proxied ? LOOPBACK : config.host,
    reusePort: false,
    idleTimeout: idleSeconds,
    // Bun refuses larger bodies itself (a bare 413); the routes hold each body to its own limit.
    maxRequestBodySize: Math.max(config.maxBodyBytes, config.batchMaxBytes) * 2,
    // TLS_CERT_FILE / TLS_KEY_FILE: the node speaks HTTPS itself (an L4 balancer passes TLS through);
    // HTTP2=true adds HTTP/2 beside HTTP/1.1 by ALPN (README, "HTTP/2": why it is off by default).
    ...(tls ? { tls: { cert: tls.cert, key: tls.key }, http2: config.security.http2 } : {}),
  });
  if (proxied) {
    front = startProxyFront({
      hostname: config.host,
      port: config.port,
      backend: { host: LOOPBACK, port: app.server!.port! },
      trusted: (peer) => trustsPeer(config.limits.trustProxy, peer),
      firstBytesTimeoutMs: idleSeconds * 1000,
      onRefused: (reason, peer, detail) => {
        metrics.proxyRefused[reason].inc();
        logger.info("connection refused: a PROXY header that is broken, late or not from a trusted balancer", { reason, peer, ...(detail ? { detail } : {}) });
      },
    });
  }
  logger.info("listening", {
    port: config.port,
    host: config.host,
    scheme,
    http2: config.security.http2,
    maxConnections: config.maxConnections,
    proxyProtocol: proxied,
  });

  // A node cut off from NATS, or whose log started over, cannot keep its streams exact: they end (with
  // the retry already sent) and their clients resume by id through the balancer, on a node that can.
  node.onUnavailable((why) => {
    logger.warn("ending every stream so clients resume elsewhere", { why, streams: registry.size });
    registry.closeAll("unavailable");
  });
  // Two live nodes with one NODE_ID: this one came second. Its streams end (their clients resume on
  // the other nodes) and it exits as for a bad setting, without leaving the cluster: the entry it would
  // delete is the first one's.
  node.onNodeIdTaken((other) => {
    logger.error(`NODE_ID "${config.nodeId}" is taken by a live node at ${other.url} that started first: every node needs its own NODE_ID. Stopping`, {
      otherUrl: other.url,
      otherStartedAt: new Date(other.startedAt).toISOString(),
    });
    registry.closeAll("unavailable");
    void Promise.race([app.stop().catch(() => {}), Bun.sleep(TWIN_STOP_MS)]).finally(() => process.exit(2));
  });
  try {
    await node.start();
  } catch (err) {
    logger.error("could not join the cluster", { err, nats: config.nats.urls });
    process.exit(1);
  }

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info("draining", { signal, streams: registry.size, noticeMs: config.drainNoticeMs, drainMs: config.drainMs });
    // Leave first so the others take the matches over and /readyz says 503; keep serving a moment so
    // the balancer notices (new streams meanwhile get the refusal form); then end the streams spread
    // over DRAIN so their clients reconnect elsewhere without arriving all at once.
    await node.leave();
    await Bun.sleep(config.drainNoticeMs);
    await registry.drain(config.drainMs);
    await node.close();
    registry.stop();
    churn?.stop();
    stopLagMonitor();
    await app.stop().catch(() => {});
    front?.stop(true);
    await tracing.shutdown().catch(() => {});
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

if (import.meta.main) await main();
