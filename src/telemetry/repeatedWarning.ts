/**
 * RepeatedWarning: one condition that can recur thousands of times a second (every publish failing
 * while NATS is away or its storage is full) logged as one line, then at most one line per interval
 * counting what happened meanwhile, instead of a line each.
 */
import type { LogFields, Logger } from "./logger.ts";

export class RepeatedWarning {
  private lastLoggedAt = Number.NEGATIVE_INFINITY;
  private unlogged = 0;

  constructor(
    private readonly logger: Pick<Logger, "warn">,
    private readonly msg: string,
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** One more occurrence: logged with `fields` when the interval since the last line is over, else counted. */
  note(fields: LogFields): void {
    const now = this.now();
    if (now - this.lastLoggedAt < this.intervalMs) {
      this.unlogged++;
      return;
    }
    this.logger.warn(this.msg, this.unlogged > 0 ? { ...fields, alsoSinceLastLine: this.unlogged } : fields);
    this.lastLoggedAt = now;
    this.unlogged = 0;
  }
}
