/**
 * Slots: at most N of something at once (NATS requests a node keeps in flight for one purpose); the
 * rest wait their turn in arrival order. A node starting thousands of owners at once sends their
 * requests a few dozen at a time, so the answers never arrive in one burst that stalls the event loop.
 */
export class Slots {
  private waiting: (() => void)[] = [];
  /** Index of the next waiter: a queue of thousands is not shifted one by one. */
  private head = 0;

  constructor(private free: number) {}

  take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(): void {
    const next = this.waiting[this.head];
    if (next === undefined) {
      this.free++;
      return;
    }
    this.head++;
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    }
    next();
  }

  /** Runs `work` in a slot. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.take();
    try {
      return await work();
    } finally {
      this.give();
    }
  }
}
