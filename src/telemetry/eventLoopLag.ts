/**
 * Event-loop lag: how late a timer fires compared with when it was due. A loop busy with a
 * fan-out burst or a long synchronous task shows up here before clients notice it.
 *
 * The gauge holds the worst lateness of the probes of the last `windowMs`, not the last probe's: a
 * stall of 200 ms between two probes half a second apart, read by a scrape every 15 s, was seen by
 * one scrape in thirty. Probing often and keeping the window's worst, every stall of at least a probe
 * interval shows in every scrape made within the window after it.
 */

const MS_PER_SECOND = 1000;

/**
 * Arms a timer every `intervalMs` and sets `gauge` to the worst lateness (in seconds) of the probes
 * fired in the last `windowMs`. The timer does not keep the process alive. Returns a function that
 * stops the monitor.
 */
export function startEventLoopLagMonitor(gauge: { set(v: number): void }, intervalMs: number, windowMs = intervalMs): () => void {
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) {
    throw new RangeError(`event loop lag interval must be a positive number of ms, got ${intervalMs}`);
  }
  // The last `slots` probes' lateness, oldest overwritten first.
  const slots = Math.max(1, Math.ceil(windowMs / intervalMs));
  const lateness = new Float64Array(slots);
  let next = 0;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const arm = (): void => {
    const due = performance.now() + intervalMs;
    timer = setTimeout(() => {
      if (stopped) return;
      lateness[next] = Math.max(0, performance.now() - due);
      next = (next + 1) % slots;
      let worst = 0;
      for (const ms of lateness) if (ms > worst) worst = ms;
      gauge.set(worst / MS_PER_SECOND);
      arm();
    }, intervalMs);
    timer.unref?.();
  };
  arm();

  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
