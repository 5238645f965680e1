/**
 * OwnStoresWatch: whether, over an interval, everything the stream tail handed on was stored by this
 * node itself. Pure bookkeeping over stream sequences, no I/O (streamTail.ts acts on its answers).
 *
 * JetStream numbers a stream's messages one after another across all its subjects, and acknowledges
 * one connection's publishes in the order they were sent. So when this node's acknowledgements follow
 * each other without a hole, nobody else stored anything between them; and when the tail has handed on
 * nothing past the latest of them, nobody stored anything after either. A node alone in its ring sees
 * that most of the time, and then its tail can hand on its own stores from their acknowledgements
 * instead of having JetStream deliver each one back to it.
 */
export class OwnStoresWatch {
  /** The highest sequence acknowledged to this node (or the tail's position when the watch began). */
  private lastAck: number;
  /** No hole between this interval's acknowledgements. */
  private contiguous = true;
  /** The tail's position at the end of the previous interval. */
  private positionBefore: number;

  constructor(position: number) {
    this.lastAck = position;
    this.positionBefore = position;
  }

  /**
   * A store of this node was acknowledged. A duplicate names the sequence of the message it duplicates,
   * stored earlier by someone: past the latest acknowledgement, that someone was not this node.
   */
  noteAck(seq: number, duplicate: boolean): void {
    if (duplicate) {
      if (seq > this.lastAck) this.contiguous = false;
      return;
    }
    if (seq !== this.lastAck + 1) this.contiguous = false;
    if (seq > this.lastAck) this.lastAck = seq;
  }

  /** Another writer's store was seen some other way (the tail's own check found one). */
  noteOtherWriter(): void {
    this.contiguous = false;
  }

  /**
   * Ends an interval at the tail's `position` (the last sequence it handed on) and says whether the
   * interval was quiet: no hole between acknowledgements, the tail not behind them (what it has not
   * handed on yet would be lost if it stopped reading now), and nothing past them handed on during
   * the interval (a message stored by another writer while this node stored nothing).
   */
  endInterval(position: number): boolean {
    const quiet = this.contiguous && position >= this.lastAck && (position === this.lastAck || position === this.positionBefore);
    this.contiguous = true;
    this.positionBefore = position;
    return quiet;
  }
}
