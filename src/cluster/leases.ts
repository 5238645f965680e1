/**
 * Ownership leases: the fence that keeps two nodes from acting as owner of one match at once.
 *
 * The ring says who *should* own a match; views of the ring can disagree for a moment while membership
 * changes. A node acts as owner only while it holds the match's lease, a key in a KV bucket written with
 * compare-and-set on the key's revision. The revision it wrote is the owner's epoch: it rides on every
 * live message, so receivers drop anything from an older epoch. A lease is taken over from another node
 * only when that node is no longer live; a live holder hands over by releasing when its ring moves the
 * match away. Every node watches the bucket, so a holder learns at once that it was fenced off.
 */
import type { KV } from "@nats-io/kv";
import type { BucketWatch } from "../bus/bucketWatch.ts";
import { Slots } from "../bus/slots.ts";
import { ROOT_CONTEXT, SpanKind } from "@opentelemetry/api";
import { ATTR, type LeaseOutcome, SPAN } from "../telemetry/spanNames.ts";
import { TRACING_OFF, type TracingHandle, endWhenSettled } from "../telemetry/spans.ts";

/** Lease acquisitions in flight at once (a create, or a read and a write): thousands of owners take turns. */
const ACQUIRING_AT_ONCE = 32;

export interface Lease {
  node: string;
  epoch: number;
}

export class LeaseTable {
  private readonly holders = new Map<string, Lease>();
  private watcher: { stop(): void } | undefined;
  private readonly fencedListeners = new Set<(match: string, lease: Lease | undefined) => void>();
  private readonly acquiring = new Slots(ACQUIRING_AT_ONCE);

  constructor(
    private readonly kv: KV,
    private readonly watch: BucketWatch,
    private readonly selfId: string,
    private readonly tracing: TracingHandle = TRACING_OFF,
  ) {}

  async start(): Promise<void> {
    this.watcher = await this.watch((e) => {
      if (e.operation === "PUT") {
        try {
          const node = JSON.parse(e.string()) as { node: string };
          this.set(e.key, { node: node.node, epoch: e.revision });
        } catch {
          /* not ours: ignore */
        }
      } else {
        this.set(e.key, undefined);
      }
    });
  }

  stop(): void {
    this.watcher?.stop();
  }

  /** Called when the lease of a match changes hands (or is released). */
  onChange(listener: (match: string, lease: Lease | undefined) => void): () => void {
    this.fencedListeners.add(listener);
    return () => this.fencedListeners.delete(listener);
  }

  holder(match: string): Lease | undefined {
    return this.holders.get(match);
  }

  /**
   * Tries to take the lease. Returns the new epoch, or undefined when a live node other than us holds it
   * (the caller retries once that node releases or drops out of membership).
   */
  async acquire(match: string, isLive: (node: string) => boolean): Promise<number | undefined> {
    if (!this.tracing.enabled) return this.acquiring.run(() => this.tryAcquire(match, isLive, () => {}));
    // Ownership changes are traces of their own, whatever context the caller runs in.
    const span = this.tracing.tracer.startSpan(SPAN.leaseAcquire, { kind: SpanKind.CLIENT, attributes: { [ATTR.match]: match } }, ROOT_CONTEXT);
    const note = (outcome: LeaseOutcome, previous: string | undefined, epoch?: number): void => {
      span.setAttribute(ATTR.leaseOutcome, outcome);
      if (previous !== undefined) span.setAttribute(ATTR.leasePreviousHolder, previous);
      if (epoch !== undefined) span.setAttribute(ATTR.leaseEpoch, epoch);
    };
    return endWhenSettled(
      span,
      this.acquiring.run(() => this.tryAcquire(match, isLive, note)),
    );
  }

  private async tryAcquire(
    match: string,
    isLive: (node: string) => boolean,
    note: (outcome: LeaseOutcome, previous: string | undefined, epoch?: number) => void,
  ): Promise<number | undefined> {
    const value = JSON.stringify({ node: this.selfId, at: Date.now() });
    // Most leases are of matches nobody held yet (new, or released): one create, no read before it.
    // It fails if anyone holds the lease; the read below then finds out who.
    const created = await this.kv.create(match, value).catch(() => undefined);
    if (created !== undefined) {
      this.set(match, { node: this.selfId, epoch: created });
      note("acquired", undefined, created);
      return created;
    }
    const current = await this.kv.get(match);
    let holder: string | undefined;
    try {
      let epoch: number;
      if (current?.operation !== "PUT") {
        epoch = current ? await this.kv.update(match, value, current.revision) : await this.kv.create(match, value);
      } else {
        holder = (JSON.parse(current.string()) as { node: string }).node;
        if (holder !== this.selfId && isLive(holder)) {
          note("held", holder);
          return undefined;
        }
        epoch = await this.kv.update(match, value, current.revision);
      }
      this.set(match, { node: this.selfId, epoch });
      note("acquired", holder, epoch);
      return epoch;
    } catch {
      // Someone else wrote first (wrong last sequence): they hold it now.
      note("lost_race", holder);
      return undefined;
    }
  }

  /** Gives the lease up if we still hold it at `epoch`. */
  async release(match: string, epoch: number): Promise<void> {
    const held = this.holders.get(match);
    if (held?.node === this.selfId && held.epoch === epoch) this.holders.delete(match);
    const deleting = this.kv.delete(match, { previousSeq: epoch });
    if (this.tracing.enabled) {
      const span = this.tracing.tracer.startSpan(
        SPAN.leaseRelease,
        { kind: SpanKind.CLIENT, attributes: { [ATTR.match]: match, [ATTR.leaseEpoch]: epoch } },
        ROOT_CONTEXT,
      );
      await endWhenSettled(span, deleting).catch(() => {});
    } else {
      await deleting.catch(() => {});
    }
  }

  private set(match: string, lease: Lease | undefined): void {
    const before = this.holders.get(match);
    if (lease) {
      if (before && before.epoch > lease.epoch) return;
      this.holders.set(match, lease);
    } else {
      this.holders.delete(match);
    }
    if (before?.epoch !== lease?.epoch) for (const l of this.fencedListeners) l(match, lease);
  }
}
