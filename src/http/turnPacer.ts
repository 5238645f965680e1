/**
 * TurnPacer: spreads a storm of request work (stream opens, batch publishes) over several turns of the
 * event loop.
 *
 * Why: the server hands every request that is ready to its handler in one turn of the loop. A storm of
 * opens (a kick-off, the clients of a node that died, a thousand EventSources retrying at once) made
 * one turn run for a second on a freshly started node (about 1 ms per open while its code is still
 * cold, a thousand opens ready at once), and four 500-item batches arriving together held it for
 * 100 ms: no timer, health check, publish ack or heartbeat ran meanwhile. The pacer lets work go on
 * while the turn has spent less than `budgetMs` on it; the rest waits, in arrival order, and goes a
 * little at a time in later turns, with everything else getting its turn in between. A quiet node
 * never waits: the first request of a turn always goes at once.
 *
 * A pacer may also be told to hold back (`holdWhile`): while the node is behind on work already taken
 * on (the events of earlier batches stored and not yet handed on by its stream tail), new batches
 * would only add to that queue and every event's delivery would wait behind it. While held, one waiting
 * request goes per turn, so a held pacer slows its requests down without ever stopping them.
 *
 * The clock and the scheduling of the next turn are injected so the pacing is unit-tested without a
 * server (`turnPacer.test.ts`).
 */

export interface TurnPacerOptions {
  /** Time a turn may spend on paced work before the next requests wait for a later turn. */
  budgetMs: number;
  now?: () => number;
  /** Runs `fn` in a later turn of the event loop (after pending I/O and due timers). */
  later?: (fn: () => void) => void;
  /** While this holds, requests wait for a later turn and one goes per turn. */
  holdWhile?: () => boolean;
}

export class TurnPacer {
  private readonly budgetMs: number;
  private readonly now: () => number;
  private readonly later: (fn: () => void) => void;
  private readonly holdWhile: () => boolean;
  /** When the current turn's first paced request started; undefined until one arrives in a turn. */
  private turnStartedAt: number | undefined;
  /** Counts turns begun, so a reset scheduled by an earlier turn cannot end a later one. */
  private turns = 0;
  private readonly waiting: (() => void)[] = [];
  private head = 0;
  private releasing = false;

  constructor(opts: TurnPacerOptions) {
    this.budgetMs = opts.budgetMs;
    this.now = opts.now ?? (() => performance.now());
    this.later = opts.later ?? ((fn) => setImmediate(fn));
    this.holdWhile = opts.holdWhile ?? (() => false);
  }

  /** Requests waiting for a later turn. */
  get pending(): number {
    return this.waiting.length - this.head;
  }

  /**
   * Undefined when the request may go on in this turn; otherwise a promise that settles in a later turn,
   * in arrival order. `await pacer.turn()` on undefined would still cost a microtask, hence the form.
   */
  turn(): Promise<void> | undefined {
    if (this.pending === 0 && !this.holdWhile() && this.withinBudget()) return undefined;
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.releaseLater();
    });
  }

  private withinBudget(): boolean {
    const now = this.now();
    if (this.turnStartedAt === undefined) {
      this.beginTurn(now);
      return true;
    }
    return now - this.turnStartedAt < this.budgetMs;
  }

  /** This turn's paced work counts from `now`; the next turn starts afresh. */
  private beginTurn(now: number): void {
    this.turnStartedAt = now;
    const turn = ++this.turns;
    this.later(() => {
      if (this.turns === turn) this.turnStartedAt = undefined;
    });
  }

  private releaseLater(): void {
    if (this.releasing) return;
    this.releasing = true;
    this.later(() => this.releaseTurn());
  }

  /**
   * A new turn: waiting requests go one at a time, each after the previous one's synchronous work (a
   * microtask queued behind its continuation), until the budget is spent (or, held, after the first);
   * the rest wait for the next.
   */
  private releaseTurn(): void {
    this.releasing = false;
    const startedAt = this.now();
    this.beginTurn(startedAt);
    let released = 0;
    const next = (): void => {
      if (this.pending === 0) return;
      if (this.now() - startedAt >= this.budgetMs || (released > 0 && this.holdWhile())) {
        this.releaseLater();
        return;
      }
      const resolve = this.waiting[this.head++] as () => void;
      if (this.head === this.waiting.length) {
        this.waiting.length = 0;
        this.head = 0;
      }
      released++;
      resolve();
      queueMicrotask(next);
    };
    next();
  }
}
