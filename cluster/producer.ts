/**
 * `bun run producer`: drives simulated football matches against a Touchline cluster (see
 * demo/demoProducer.ts). Env: MATCHES (default 120), TOUCHLINE_URL (default the entry port,
 * http://127.0.0.1:$ENTRY_PORT or 3000), SPEED (default 1: a match takes about four minutes),
 * TOUCHLINE_TOKEN or TOUCHLINE_JWT_SECRET when the cluster guards publishing.
 * Logs one summary line every 10 s; SIGTERM or Ctrl-C stops it after the requests in flight.
 */
import { DemoProducer } from "./demo/demoProducer.ts";
import { loadProducerConfig, ProducerConfigError, type ProducerConfig } from "./demo/producerConfig.ts";

const SUMMARY_EVERY_MS = 10_000;
/** Requests in flight get this long to finish on stop; a cluster that is gone does not hold us. */
const STOP_GRACE_MS = 5_000;

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function configOrExit(): Promise<ProducerConfig> {
  try {
    return await loadProducerConfig();
  } catch (err) {
    if (!(err instanceof ProducerConfigError)) throw err;
    process.stderr.write(`producer: ${err.message}\n`);
    process.exit(2);
  }
}

const config = await configOrExit();
const producer = new DemoProducer({ ...config, log });
log(`producer: ${config.matches} matches against ${config.baseUrl}, speed ${config.speed}${config.token ? ", with a publish token" : ""}`);
producer.start();

let lastStored = 0;
let lastAt = performance.now();
const summaries = setInterval(() => {
  const now = performance.now();
  const stored = producer.counts.stored;
  const rate = ((stored - lastStored) * 1000) / (now - lastAt);
  lastStored = stored;
  lastAt = now;
  log(`producer: ${producer.summary()}; ${rate.toFixed(1)} events/s`);
}, SUMMARY_EVERY_MS);

let stopping = false;
const stop = async (signal: string): Promise<void> => {
  if (stopping) return;
  stopping = true;
  clearInterval(summaries);
  log(`producer: ${signal}, stopping`);
  const timedOut = Symbol("timeout");
  const result = await Promise.race([producer.stop(), Bun.sleep(STOP_GRACE_MS).then(() => timedOut)]);
  log(`producer: ${result === timedOut ? "gave up waiting for requests in flight; " : ""}stopped. ${producer.summary()}`);
  process.exit(0);
};
process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));
