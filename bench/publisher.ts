/**
 * Publishing for the scenarios. Events go out one at a time, each after the previous one was
 * accepted, so every channel's sequence numbers reach the peer in order and "as fast as the peer
 * accepts" means exactly that. Every loop is bounded in count and in time.
 */
import type { Peer } from "./peers/peer.ts";

/** The last sequence number published per channel: what a stream opened now has already missed. */
export class SequenceBook {
  private readonly last = new Map<string, number>();

  lastOf(channel: string): number {
    return this.last.get(channel) ?? 0;
  }

  async publishNext(peer: Peer, channel: string): Promise<void> {
    const seq = this.lastOf(channel) + 1;
    await peer.publish(channel, seq);
    this.last.set(channel, seq);
  }

  /** Records a sequence number the peer acknowledged by other means (a batch covering many channels). */
  acknowledged(channel: string, seq: number): void {
    if (seq > this.lastOf(channel)) this.last.set(channel, seq);
  }

  finals(channels: string[]): Record<string, number> {
    const finals: Record<string, number> = {};
    for (const channel of channels) finals[channel] = this.lastOf(channel);
    return finals;
  }
}

/** How long and how fast a paced load sends. */
export interface Pace {
  ratePerSecond: number;
  /** Stop after this many events... */
  maxEvents: number;
  /** ...or after this long, whichever comes first... */
  maxMs: number;
  /** ...or when this returns true. */
  stop?: () => boolean;
}

export interface PacedPlan extends Pace {
  /** Events go to these channels in turn. */
  channels: string[];
}

const PACING_TICK_MS = 5;

/** Publishes at a steady rate (catching up if a publish was slow); returns how many went out. */
export function publishPaced(peer: Peer, book: SequenceBook, plan: PacedPlan): Promise<number> {
  return sendPaced(plan, (i) => book.publishNext(peer, plan.channels[i % plan.channels.length] as string));
}

/** Sends event 0, 1, ... one at a time at a steady rate (catching up if one was slow); returns how many went out. */
export async function sendPaced(pace: Pace, send: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let sent = 0;
  while (sent < pace.maxEvents && !(pace.stop?.() ?? false)) {
    const elapsed = performance.now() - started;
    if (elapsed >= pace.maxMs) break;
    const due = Math.min(pace.maxEvents, Math.floor((elapsed / 1000) * pace.ratePerSecond) + 1);
    if (sent >= due) {
      await Bun.sleep(PACING_TICK_MS);
      continue;
    }
    await send(sent);
    sent++;
  }
  return sent;
}

/** Publishes `count` events to one channel back to back; returns the time it took, ms. */
export async function publishBurst(peer: Peer, book: SequenceBook, channel: string, count: number, maxMs: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count && performance.now() - started < maxMs; i++) await book.publishNext(peer, channel);
  return performance.now() - started;
}
