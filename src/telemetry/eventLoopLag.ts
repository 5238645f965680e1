/**
 * Event-loop lag: how late a timer fires compared with when it was due. A loop busy with a
 * fan-out burst or a long synchronous task shows up here before clients notice it.
 */

const MS_PER_SECOND = 1000;

/**
 * Arms a timer every `intervalMs` and sets `gauge` to how late (in seconds) the last one fired.
 * The timer does not keep the process alive. Returns a function that stops the monitor.
 */
export function startEventLoopLagMonitor(gauge: { set(v: number): void }, intervalMs: number): () => void {
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) {
    throw new RangeError(`event loop lag interval must be a positive number of ms, got ${intervalMs}`);
  }
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const arm = (): void => {
    const due = performance.now() + intervalMs;
    timer = setTimeout(() => {
      if (stopped) return;
      gauge.set(Math.max(0, performance.now() - due) / MS_PER_SECOND);
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
