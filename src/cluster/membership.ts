/**
 * Membership: who is in the cluster, from a JetStream KV bucket.
 *
 * Each node puts its entry every `renewMs`. NATS 2.9 ignores per-key TTLs and a bucket's max age removes
 * old values silently (watchers are not told), so liveness is judged here: a node is live while its
 * latest renewal is younger than `ttlMs`. A node leaving cleanly deletes its key and drops out at once.
 * While NATS is unreachable renewals cannot arrive, so expiry is frozen and resumes with a fresh grace
 * period after reconnecting: an outage must not make every node think it is alone.
 */
import type { KV, KvEntry } from "@nats-io/kv";
import { OwnershipRing } from "./ownershipRing.ts";

export interface MemberInfo {
  id: string;
  url: string;
  startedAt: number;
}

export interface MembershipView {
  readonly ring: OwnershipRing;
  readonly version: number;
  members(): MemberInfo[];
}

type Listener = (ring: OwnershipRing, previous: OwnershipRing) => void;

export class Membership implements MembershipView {
  private readonly lastSeen = new Map<string, { info: MemberInfo; at: number }>();
  private readonly listeners = new Set<Listener>();
  private renewTimer: ReturnType<typeof setInterval> | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private watcher: { stop(): void } | undefined;
  private frozen = false;
  private joinedResolve: (() => void) | undefined;
  readonly joined: Promise<void>;
  ring = new OwnershipRing([]);
  version = 0;

  constructor(
    private readonly kv: KV,
    private readonly self: MemberInfo,
    private readonly renewMs: number,
    private readonly ttlMs: number,
  ) {
    this.joined = new Promise((r) => (this.joinedResolve = r));
  }

  async start(): Promise<void> {
    await this.renew();
    const iter = await this.kv.watch();
    this.watcher = { stop: () => iter.stop() };
    void (async () => {
      for await (const e of iter) this.apply(e, e.isUpdate ? Date.now() : Math.min(Date.now(), e.created.getTime()));
    })().catch(() => {});
    this.renewTimer = setInterval(() => void this.renew().catch(() => {}), this.renewMs);
    this.sweepTimer = setInterval(() => this.recompute(), Math.max(50, Math.floor(this.renewMs / 2)));
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  members(): MemberInfo[] {
    return this.ring.nodes.map((id) => this.lastSeen.get(id)?.info).filter((m): m is MemberInfo => !!m);
  }

  /** NATS went away: stop judging others dead. */
  freeze(): void {
    this.frozen = true;
  }

  /** NATS is back: everyone known gets a fresh grace period, and we renew at once. */
  thaw(): void {
    const now = Date.now();
    for (const v of this.lastSeen.values()) v.at = now;
    this.frozen = false;
    void this.renew().catch(() => {});
  }

  /** Leaves the cluster: deletes our key so others drop us at once (SIGTERM). */
  async leave(): Promise<void> {
    this.stopTimers();
    await this.kv.delete(this.self.id).catch(() => {});
  }

  stop(): void {
    this.stopTimers();
    this.watcher?.stop();
  }

  private stopTimers(): void {
    clearInterval(this.renewTimer);
    clearInterval(this.sweepTimer);
  }

  private async renew(): Promise<void> {
    await this.kv.put(this.self.id, JSON.stringify(this.self));
  }

  private apply(e: KvEntry, at: number): void {
    if (e.operation !== "PUT") {
      this.lastSeen.delete(e.key);
    } else {
      try {
        const info = e.json<MemberInfo>();
        this.lastSeen.set(e.key, { info, at });
      } catch {
        return;
      }
    }
    this.recompute();
  }

  private recompute(): void {
    const now = Date.now();
    const live: string[] = [];
    for (const [id, v] of this.lastSeen) {
      if (this.frozen || now - v.at < this.ttlMs || id === this.self.id) live.push(id);
    }
    if (!this.lastSeen.has(this.self.id)) {
      // Our own key is deleted only when we leave; until our first renewal is seen we are not a member.
    } else if (this.joinedResolve) {
      this.joinedResolve();
      this.joinedResolve = undefined;
    }
    const next = new OwnershipRing(live);
    if (next.nodes.join("\u0000") === this.ring.nodes.join("\u0000")) return;
    const previous = this.ring;
    this.ring = next;
    this.version++;
    for (const l of this.listeners) l(next, previous);
  }
}
