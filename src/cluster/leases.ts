/**
 * Ownership leases: the fence that keeps two nodes from acting as owner of one match at once.
 *
 * The ring says who *should* own a match; views of the ring can disagree for a moment while membership
 * changes. A node acts as owner only while it holds the lease of the match's shard (shards.ts), a key in
 * a KV bucket written with compare-and-set on the key's revision. The revision it wrote is the owner's
 * epoch: it rides on every live message, so receivers drop anything from an older epoch. A lease is
 * taken over from another node only when that node is no longer live; a live holder hands over by
 * releasing when its ring moves the shard away. Every node watches the bucket, so a holder learns at
 * once that it was fenced off.
 *
 * Leases are per shard, not per match: the matches of a shard this node owns share one lease and one
 * epoch, taken by the first of them and released by the last (a node owning 20,000 matches holds a
 * few thousand leases at most and takes each once). The API stays in matches.
 */
import type { KV } from "@nats-io/kv";
import type { BucketWatch } from "../bus/bucketWatch.ts";
import { Slots } from "../bus/slots.ts";
import { ROOT_CONTEXT, SpanKind } from "@opentelemetry/api";
import { ATTR, type LeaseOutcome, SPAN } from "../telemetry/spanNames.ts";
import { TRACING_OFF, type TracingHandle, endWhenSettled } from "../telemetry/spans.ts";
import { shardKey, shardOf, shardOfKey } from "./shards.ts";

/** Lease acquisitions in flight at once (a create, or a read and a write): thousands of owners take turns. */
const ACQUIRING_AT_ONCE = 32;

export interface Lease {
  node: string;
  epoch: number;
}

/** A shard lease this process took and has not given back: the matches acting as owners under it. */
interface HeldShard {
  epoch: number;
  matches: Set<string>;
}

type Note = (outcome: LeaseOutcome, previous: string | undefined, epoch?: number) => void;

export class LeaseTable {
  /** Every shard's lease as the watch last showed it (this node's own writes noted at once). */
  private readonly holders = new Map<number, Lease>();
  private readonly held = new Map<number, HeldShard>();
  /** One acquisition per shard at a time: matches of a shard starting together share its outcome. */
  private readonly pendingAcquire = new Map<number, Promise<number | undefined>>();
  /** Releases in flight: taking the shard again waits for its release to be written. */
  private readonly pendingRelease = new Map<number, Promise<void>>();
  private watcher: { stop(): void } | undefined;
  private readonly changeListeners = new Set<(shard: number, lease: Lease | undefined) => void>();
  private readonly acquiring = new Slots(ACQUIRING_AT_ONCE);

  constructor(
    private readonly kv: KV,
    private readonly watch: BucketWatch,
    private readonly selfId: string,
    private readonly tracing: TracingHandle = TRACING_OFF,
  ) {}

  async start(): Promise<void> {
    this.watcher = await this.watch((e) => {
      // Keys that are not shards' (per-match leases of an older version) fence nothing here.
      const shard = shardOfKey(e.key);
      if (shard === undefined) return;
      if (e.operation === "PUT") {
        try {
          const node = JSON.parse(e.string()) as { node: string };
          this.set(shard, { node: node.node, epoch: e.revision });
        } catch {
          /* not ours: ignore */
        }
      } else {
        this.set(shard, undefined, e.revision);
      }
    });
  }

  stop(): void {
    this.watcher?.stop();
  }

  /** Called with the shard whose lease changed hands (or was released). */
  onChange(listener: (shard: number, lease: Lease | undefined) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** The lease the match acts under (its shard's), as this node last saw it. */
  holder(match: string): Lease | undefined {
    return this.holders.get(shardOf(match));
  }

  /** The lease of `shard` as this node last saw it. */
  holderOfShard(shard: number): Lease | undefined {
    return this.holders.get(shard);
  }

  /**
   * Takes the lease of the match's shard, or joins it when this process already holds it. Returns the
   * epoch, or undefined when a live node other than us holds it (the caller retries once that node
   * releases or drops out of membership).
   */
  async acquire(match: string, isLive: (node: string) => boolean): Promise<number | undefined> {
    const shard = shardOf(match);
    const joined = this.join(shard, match);
    if (joined !== undefined) return joined;
    let pending = this.pendingAcquire.get(shard);
    if (!pending) {
      pending = this.acquireShard(shard, match, isLive).finally(() => this.pendingAcquire.delete(shard));
      this.pendingAcquire.set(shard, pending);
    }
    const epoch = await pending;
    return epoch === undefined ? undefined : this.join(shard, match);
  }

  /** The epoch of a shard lease this process holds and the watch still shows, now used by `match` too. */
  private join(shard: number, match: string): number | undefined {
    const held = this.held.get(shard);
    const seen = this.holders.get(shard);
    if (!held || seen?.node !== this.selfId || seen.epoch !== held.epoch) return undefined;
    held.matches.add(match);
    return held.epoch;
  }

  private async acquireShard(shard: number, match: string, isLive: (node: string) => boolean): Promise<number | undefined> {
    await this.pendingRelease.get(shard);
    if (!this.tracing.enabled) return this.acquiring.run(() => this.tryAcquire(shard, isLive, () => {}));
    // Ownership changes are traces of their own, whatever context the caller runs in.
    const span = this.tracing.tracer.startSpan(SPAN.leaseAcquire, { kind: SpanKind.CLIENT, attributes: { [ATTR.match]: match } }, ROOT_CONTEXT);
    const note: Note = (outcome, previous, epoch) => {
      span.setAttribute(ATTR.leaseOutcome, outcome);
      if (previous !== undefined) span.setAttribute(ATTR.leasePreviousHolder, previous);
      if (epoch !== undefined) span.setAttribute(ATTR.leaseEpoch, epoch);
    };
    return endWhenSettled(
      span,
      this.acquiring.run(() => this.tryAcquire(shard, isLive, note)),
    );
  }

  private async tryAcquire(shard: number, isLive: (node: string) => boolean, note: Note): Promise<number | undefined> {
    const key = shardKey(shard);
    const value = JSON.stringify({ node: this.selfId, at: Date.now() });
    // A shard nobody holds (new, or released): one create, no read before it. It fails if anyone
    // holds the lease; the read below then finds out who.
    const created = await this.kv.create(key, value).catch(() => undefined);
    if (created !== undefined) return this.took(shard, created, undefined, note);
    const current = await this.kv.get(key);
    let holder: string | undefined;
    try {
      let epoch: number;
      if (current?.operation !== "PUT") {
        epoch = current ? await this.kv.update(key, value, current.revision) : await this.kv.create(key, value);
      } else {
        holder = (JSON.parse(current.string()) as { node: string }).node;
        if (holder !== this.selfId && isLive(holder)) {
          note("held", holder);
          return undefined;
        }
        // Ours from a previous life of this node, or a node no longer live: taken over at a new epoch.
        epoch = await this.kv.update(key, value, current.revision);
      }
      return this.took(shard, epoch, holder, note);
    } catch {
      // Someone else wrote first (wrong last sequence): they hold it now.
      note("lost_race", holder);
      return undefined;
    }
  }

  private took(shard: number, epoch: number, previous: string | undefined, note: Note): number {
    this.set(shard, { node: this.selfId, epoch });
    this.held.set(shard, { epoch, matches: new Set() });
    note("acquired", previous, epoch);
    return epoch;
  }

  /**
   * `match` no longer acts under the lease it took at `epoch`. The shard's last match gives the lease
   * back (a compare-and-delete at its epoch, so a lease taken over meanwhile is left alone).
   */
  async release(match: string, epoch: number): Promise<void> {
    const shard = shardOf(match);
    const held = this.held.get(shard);
    if (!held || held.epoch !== epoch) return;
    held.matches.delete(match);
    if (held.matches.size > 0) return;
    this.held.delete(shard);
    const seen = this.holders.get(shard);
    if (seen?.node === this.selfId && seen.epoch === epoch) this.holders.delete(shard);
    const deleting = this.kv.delete(shardKey(shard), { previousSeq: epoch });
    const released = (
      this.tracing.enabled
        ? endWhenSettled(
            this.tracing.tracer.startSpan(
              SPAN.leaseRelease,
              { kind: SpanKind.CLIENT, attributes: { [ATTR.match]: match, [ATTR.leaseEpoch]: epoch } },
              ROOT_CONTEXT,
            ),
            deleting,
          )
        : deleting
    ).catch(() => {});
    this.pendingRelease.set(shard, released);
    await released;
    if (this.pendingRelease.get(shard) === released) this.pendingRelease.delete(shard);
  }

  /** `revision`: of a delete, which says nothing about a lease written after it (taken again since). */
  private set(shard: number, lease: Lease | undefined, revision?: number): void {
    const before = this.holders.get(shard);
    if (lease) {
      if (before && before.epoch > lease.epoch) return;
      this.holders.set(shard, lease);
    } else {
      if (before && revision !== undefined && before.epoch > revision) return;
      this.holders.delete(shard);
    }
    // A lease this process held, now someone else's or gone: its matches are fenced off.
    const held = this.held.get(shard);
    if (held && (lease?.node !== this.selfId || lease.epoch !== held.epoch)) this.held.delete(shard);
    if (before?.epoch !== lease?.epoch) for (const l of this.changeListeners) l(shard, lease);
  }
}
