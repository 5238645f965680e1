/**
 * Membership: who is in the cluster, from a JetStream KV bucket.
 *
 * Each node puts its entry every `renewMs`. NATS 2.9 ignores per-key TTLs and a bucket's max age removes
 * old values silently (watchers are not told), so liveness is judged here: a node is live while its
 * latest renewal is younger than `ttlMs`. A node leaving cleanly deletes its key and drops out at once.
 * While NATS is unreachable renewals cannot arrive, so expiry is frozen and resumes with a fresh grace
 * period after reconnecting: an outage must not make every node think it is alone.
 *
 * The same holds when NATS is reachable but the bucket is not: on a NATS cluster, losing the server
 * that leads the bucket stops every renewal for the seconds an election takes, and losing the server
 * that holds a node's watch blinds that node until its watch is replaced. Both show as our own renewals
 * not coming back through the watch. So a node judges others only while it sees its own renewals; the
 * time it could not see them is not counted against the others.
 *
 * Every process names itself with an `instance` beside its NODE_ID. Two live processes given the same
 * NODE_ID would overwrite each other's entry and both act as that node: nothing in the ring tells them
 * apart. A renewal of our own key by another instance, seen after our own first one, can only come
 * from such a twin (a dead predecessor writes nothing after we do), and the younger of the two steps
 * out (`events.idTaken`): the node that was there first keeps its matches.
 *
 * An entry also announces the settings every node must share (sharedSettings.ts); another node's that
 * differ from ours are reported once per change (`events.settingsDiffer`), never per renewal.
 */
import type { KV } from "@nats-io/kv";
import type { BucketEntry, BucketWatch } from "../bus/bucketWatch.ts";
import { OwnershipRing } from "./ownershipRing.ts";
import { type SettingDifference, type SharedSettings, settingDifferences } from "./sharedSettings.ts";

export interface MemberInfo {
  id: string;
  url: string;
  startedAt: number;
  /** This process's own name (random at start); absent in entries of nodes older than it. */
  instance?: string;
  /** The settings every node must share (sharedSettings.ts); absent in entries of nodes older than it. */
  settings?: SharedSettings;
}

/** Another live process renewed our NODE_ID. `yields`: it was there first, so this one must stop. */
export type IdTaken = (other: MemberInfo, yields: boolean) => void;

/** What the node hears of from its membership, each when it happens. */
export interface MembershipEvents {
  /** A renewal that failed (logged once per failure by the node; others drop us if they keep failing). */
  renewFailed?: (err: unknown) => void;
  idTaken?: IdTaken;
  /**
   * Another node's entry announces settings that differ from ours, or differ otherwise than it last
   * did, or (`differences` empty) no longer differ: once per change, not per renewal.
   */
  settingsDiffer?: (other: MemberInfo, differences: SettingDifference[]) => void;
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
  /** When our own renewal last came back through the watch (0: not yet). */
  private selfSeenAt = 0;
  /** Instances of other processes seen renewing our NODE_ID, each reported once. */
  private readonly twins = new Set<string>();
  /** Other nodes whose announced settings differ from ours, with how (as last reported). */
  private readonly differing = new Map<string, { key: string; differences: SettingDifference[] }>();
  private joinedResolve: (() => void) | undefined;
  readonly joined: Promise<void>;
  ring = new OwnershipRing([]);
  version = 0;

  constructor(
    private readonly kv: KV,
    private readonly watch: BucketWatch,
    private readonly self: MemberInfo,
    private readonly renewMs: number,
    private readonly ttlMs: number,
    private readonly events: MembershipEvents = {},
  ) {
    this.joined = new Promise((r) => (this.joinedResolve = r));
  }

  async start(): Promise<void> {
    await this.renew();
    this.watcher = await this.watch((e) => this.apply(e, e.isUpdate ? Date.now() : Math.min(Date.now(), e.created.getTime())));
    this.renewTimer = setInterval(() => void this.renew().catch(this.renewFailed), this.renewMs);
    this.sweepTimer = setInterval(() => this.recompute(), Math.max(50, Math.floor(this.renewMs / 2)));
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  members(): MemberInfo[] {
    return this.ring.nodes.map((id) => this.lastSeen.get(id)?.info).filter((m): m is MemberInfo => !!m);
  }

  /** Members whose announced settings differ from ours, and how. */
  settingsDiffering(): { node: string; differences: SettingDifference[] }[] {
    return this.ring.nodes.flatMap((node) => {
      const differing = this.differing.get(node);
      return differing ? [{ node, differences: differing.differences }] : [];
    });
  }

  private readonly renewFailed = (err: unknown): void => this.events.renewFailed?.(err);

  /** NATS went away: stop judging others dead. */
  freeze(): void {
    this.frozen = true;
  }

  /** NATS is back: everyone known gets a fresh grace period, and we renew at once. */
  thaw(): void {
    const now = Date.now();
    // Only members get the grace: a node already judged dead does not come back without renewing.
    for (const [id, v] of this.lastSeen) if (this.ring.nodes.includes(id)) v.at = now;
    this.frozen = false;
    void this.renew().catch(this.renewFailed);
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

  /** Not seeing our own renewals for this long means we cannot see anyone's (an election or a lost watch). */
  private get blindAfterMs(): number {
    return Math.max(this.ttlMs / 2, this.renewMs * 1.5);
  }

  private blind(now: number): boolean {
    return this.selfSeenAt > 0 && now - this.selfSeenAt > this.blindAfterMs;
  }

  /** Our renewal came back: if we were blind, the blind spell is not counted against the others. */
  private sawSelf(): void {
    const now = Date.now();
    if (this.blind(now)) {
      const unseen = now - this.selfSeenAt;
      for (const [id, v] of this.lastSeen) if (this.ring.nodes.includes(id)) v.at = Math.min(now, v.at + unseen);
    }
    this.selfSeenAt = now;
  }

  private apply(e: BucketEntry, at: number): void {
    if (e.key === this.self.id && e.operation === "PUT") {
      const twin = this.twinOf(e);
      if (twin) {
        this.claimedByTwin(twin);
        return;
      }
      this.sawSelf();
    }
    if (e.operation !== "PUT") {
      this.lastSeen.delete(e.key);
      this.differing.delete(e.key);
    } else {
      let info: MemberInfo;
      try {
        info = e.json<MemberInfo>();
      } catch {
        return;
      }
      this.lastSeen.set(e.key, { info, at });
      if (e.key !== this.self.id) this.compareSettings(info);
    }
    this.recompute();
  }

  /** Reports another node's settings when how they differ from ours changed since its last renewal. */
  private compareSettings(other: MemberInfo): void {
    if (this.self.settings === undefined) return;
    const differences = settingDifferences(this.self.settings, other.settings);
    const key = JSON.stringify(differences);
    const before = this.differing.get(other.id);
    if (key === (before?.key ?? "[]")) return;
    if (differences.length === 0) this.differing.delete(other.id);
    else this.differing.set(other.id, { key, differences });
    this.events.settingsDiffer?.(other, differences);
  }

  /** The entry, when it is our key renewed by another process (undefined for ours, or unreadable). */
  private twinOf(e: BucketEntry): MemberInfo | undefined {
    let info: MemberInfo;
    try {
      info = e.json<MemberInfo>();
    } catch {
      return undefined;
    }
    return info.instance !== undefined && info.instance !== this.self.instance ? info : undefined;
  }

  /** Our NODE_ID renewed by another process: the younger yields (ties: the larger instance name). */
  private claimedByTwin(twin: MemberInfo): void {
    const instance = twin.instance as string;
    if (this.twins.has(instance)) return;
    this.twins.add(instance);
    const yields = twin.startedAt < this.self.startedAt || (twin.startedAt === this.self.startedAt && instance < (this.self.instance ?? ""));
    if (yields) this.stopTimers();
    // The twin's renewal replaced our entry (its url) in every node's view: ours goes back at once.
    else void this.renew().catch(this.renewFailed);
    this.events.idTaken?.(twin, yields);
  }

  private recompute(): void {
    const now = Date.now();
    const live: string[] = [];
    // While frozen or blind, nobody is judged dead, but nobody judged dead comes back either: a node
    // dropped before the blind spell (stopped, paused) stays out until its own renewal is seen again.
    const judging = !this.frozen && !this.blind(now);
    for (const [id, v] of this.lastSeen) {
      const fresh = now - v.at < this.ttlMs;
      if (id === this.self.id || fresh || (!judging && this.ring.nodes.includes(id))) live.push(id);
    }
    if (!this.lastSeen.has(this.self.id)) {
      // Our own key is deleted only when we leave; until our first renewal is seen we are not a member.
    } else if (this.joinedResolve) {
      this.joinedResolve();
      this.joinedResolve = undefined;
    }
    // Checked before building a ring: building one scores every shard, and this runs several times a second.
    if (sameMembers(live, this.ring.nodes)) return;
    const next = new OwnershipRing(live);
    const previous = this.ring;
    this.ring = next;
    this.version++;
    for (const l of this.listeners) l(next, previous);
  }
}

/**
 * The entries of the members bucket renewed within `ttlMs`, read once (for a node before it starts its
 * membership). Judged by the server's time of each renewal, so it assumes the nodes' clocks agree
 * within a fraction of the TTL, as NTP keeps them.
 */
export async function liveMembers(kv: KV, ttlMs: number): Promise<MemberInfo[]> {
  const live: MemberInfo[] = [];
  const now = Date.now();
  for await (const key of await kv.keys()) {
    const e = await kv.get(key);
    if (e === null || e.operation !== "PUT" || now - e.created.getTime() >= ttlMs) continue;
    try {
      live.push(e.json<MemberInfo>());
    } catch {
      // not a member entry
    }
  }
  return live;
}

/** `live` (any order, no repeats) names exactly the ring's nodes. */
function sameMembers(live: string[], ring: readonly string[]): boolean {
  if (live.length !== ring.length) return false;
  const members = new Set(ring);
  return live.every((id) => members.has(id));
}
