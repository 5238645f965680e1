/**
 * TurnQueue: matches found in bursts (a pull off the stream tail, a ring move) and handled a slice per
 * turn of the event loop, each once, in the order found: handling a thousand in the turn that found
 * them holds every stream of the node for as long.
 */
export class TurnQueue {
  private readonly queued = new Set<string>();

  constructor(
    /** Matches handled per turn, counting those `handle` did work for (it answers true). */
    private readonly perTurn: number,
    private readonly handle: (match: string) => boolean,
  ) {}

  has(match: string): boolean {
    return this.queued.has(match);
  }

  add(match: string): void {
    if (this.queued.has(match)) return;
    this.queued.add(match);
    if (this.queued.size === 1) setImmediate(this.handleSome);
  }

  clear(): void {
    this.queued.clear();
  }

  private readonly handleSome = (): void => {
    let handled = 0;
    for (const match of this.queued) {
      if (handled >= this.perTurn) break;
      this.queued.delete(match);
      if (this.handle(match)) handled++;
    }
    if (this.queued.size > 0) setImmediate(this.handleSome);
  };
}
