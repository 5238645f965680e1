/**
 * ChurnCollector: asks the runtime for one garbage collection when a burst of stream opens and closes
 * has died down.
 *
 * Why: every stream open leaves garbage behind (the parsed request, its headers, the promises of the
 * join). JSC collects on allocation pressure and on a slow timer, and an idle node allocates next to
 * nothing, so after a connection storm (a kick-off, a dying node's clients landing here) that garbage stayed
 * resident for ten seconds or more: 18,500 streams opened in 1.4 s left the node at 203 MB three seconds
 * later, and at 168 MB once JSC got round to it (7.0 against 5.0 KB per stream). One collection as soon as
 * the storm is over gives that memory back; steady traffic never triggers it, because it waits for a
 * quiet interval. The node asks for a concurrent collection: a synchronous one took 37 ms at 18,500
 * streams but 130-280 ms with 20,000 matches owned, a pause every stream felt.
 *
 * The collection itself is injected and `check` is what the timer runs, so the timing logic is unit-tested
 * without a GC or a clock.
 */

export interface ChurnCollectorOptions {
  /** Opens and closes since the last collection that make a collection worth it. */
  threshold: number;
  /** A check runs this often; a collection needs one whole interval without churn. */
  quietMs: number;
  /** Runs the collection (`Bun.gc` in the node). */
  collect(): void;
}

export class ChurnCollector {
  private churn = 0;
  private churnAtLastCheck = 0;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly opts: ChurnCollectorOptions) {
    this.timer = setInterval(() => this.check(), opts.quietMs);
    // A pending check must never keep a stopping process alive.
    this.timer.unref?.();
  }

  /** One stream opened or closed. */
  note(): void {
    this.churn++;
  }

  /** Exposed for tests: what the timer runs. */
  check(): void {
    const quiet = this.churn === this.churnAtLastCheck;
    this.churnAtLastCheck = this.churn;
    if (!quiet || this.churn < this.opts.threshold) return;
    this.churn = 0;
    this.churnAtLastCheck = 0;
    this.opts.collect();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
