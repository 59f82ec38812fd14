import { Logger } from '@nestjs/common';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { errorText, logIds } from '../observability/log-format.js';
import { BackgroundLoop } from '../runtime/background-loop.js';
import { planAssignment, quotaOf } from './partition-assignment.js';

/** Partitions whose leases are requested at once. */
const ACQUIRE_BATCH = 200;
import { readablePartitions, type PartitionLayout } from './partition-layout.js';
import type { PartitioningManager } from './partitioning.manager.js';

/** A partition this consumer holds the lease of. */
export interface LeasedPartition {
  readonly pattern: string;
  readonly partition: number;
  readonly stream: string;
  /** '<consumer>|<fencing token>': checked by the commit script, so a consumer that lost it commits nothing. */
  readonly lease: string;
}

export interface CoordinatorSettings {
  readonly patterns: readonly string[];
  readonly group: string;
  readonly consumer: string;
  /** Start id of the group on the partitions of a topic's first layout (later partitions always start at 0). */
  readonly groupStartId: string;
  readonly sessionTimeoutMs: number;
  readonly balanced: boolean;
  /** `dynamic` with `autoScaling`: how often the scaler looks at the load. */
  readonly autoScaleEveryMs?: number;
}

export interface CoordinatorHooks {
  /** A partition became ours: take over its pending entries and start handling it. */
  readonly assigned: (partition: LeasedPartition) => Promise<void>;
  /** Stop handling a partition and wait for its running handlers (rebalance or shutdown); the lease is released after. */
  readonly revoked: (partition: LeasedPartition) => Promise<void>;
  /** The lease was lost (expired, taken over): stop handling the partition at once. */
  readonly lost: (partition: LeasedPartition) => void;
}

/**
 * The group coordinator, without a coordinator process: consumers of a group register in a members set with a
 * heartbeat, and each one, on every heartbeat, plans the same balanced and sticky assignment (planAssignment) from
 * the same view (live members, lease holders) and acts for itself only: it releases partitions over its quota and
 * takes free ones up to it. A lease (SET PX with a fencing token from a counter) makes a partition's owner unique;
 * a consumer that cannot renew in time stops handling the partition by itself (its lease may be someone else's
 * already), and its commits are refused by the token check.
 */
export class PartitionCoordinator {
  private readonly logger = new Logger('RedisStreamsPartitions');
  private readonly owned = new Map<string, LeasedPartition & { validUntil: number }>();
  private readonly releasing = new Set<string>();
  private readonly groupsCreated = new Set<string>();
  private running = false;
  /** A heartbeat every third of sessionTimeoutMs (after the previous one ended); a failed one is logged once. */
  private readonly heartbeat: BackgroundLoop;
  private lastAutoScale: number;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: StreamKeys,
    private readonly partitioning: PartitioningManager,
    private readonly settings: CoordinatorSettings,
    private readonly hooks: CoordinatorHooks,
    private readonly now: () => number = Date.now,
  ) {
    this.lastAutoScale = now();
    const { group, consumer } = settings;
    this.heartbeat = new BackgroundLoop(() => this.doTick(), {
      intervalMs: Math.max(100, Math.floor(settings.sessionTimeoutMs / 3)),
      onFailing: (error) => this.logger.warn(`Partition coordination failed, retrying: ${errorText(error)} ${logIds({ group })}`),
      onRecovered: () => this.logger.log(`Partition coordination resumed ${logIds({ group, consumer })}`),
    });
  }

  /** Joins the group and takes a first share of the partitions. */
  async start(): Promise<void> {
    this.running = true;
    await this.tick();
    if (this.running) this.heartbeat.start('afterInterval');
  }

  /** Leaves the group: every partition is revoked (handlers finish) and its lease released, so others take over at once. */
  async stop(): Promise<void> {
    this.running = false;
    await this.heartbeat.stop();
    await Promise.all([...this.owned.values()].map((p) => this.release(p)));
    for (const pattern of this.settings.patterns) {
      await this.redis
        .rseHeartbeat(this.keys.members(pattern, this.settings.group), this.settings.consumer, this.settings.sessionTimeoutMs, '1')
        .catch(() => undefined); // unreachable Redis: the membership expires by itself
    }
  }

  /**
   * Where this consumer stands with a partition: `held` (lease held and renewed recently enough: it may act),
   * `lapsed` (still owned, but not renewed in time — a renewal is on its way or Redis is unreachable; it either comes
   * back, or the lease is lost), `gone` (not owned, or being released).
   */
  leaseState(stream: string): 'held' | 'lapsed' | 'gone' {
    const owned = this.owned.get(stream);
    if (owned === undefined || this.releasing.has(stream)) return 'gone';
    return this.now() < owned.validUntil ? 'held' : 'lapsed';
  }

  /** True while this consumer may still act for the partition (lease held and renewed recently enough). */
  holds(stream: string): boolean {
    const owned = this.owned.get(stream);
    return owned !== undefined && !this.releasing.has(stream) && this.now() < owned.validUntil;
  }

  /** The lease value of an owned partition. */
  leaseOf(stream: string): string | undefined {
    return this.owned.get(stream)?.lease;
  }

  /** Partitions owned now. */
  ownedPartitions(): LeasedPartition[] {
    return [...this.owned.values()];
  }

  /** One heartbeat now (tests and the timer); joins the one in progress. Never rejects. */
  tick(): Promise<void> {
    return this.heartbeat.runNow();
  }

  private async doTick(): Promise<void> {
    await this.renew();
    for (const pattern of this.settings.patterns) {
      if (!this.running) return;
      await this.balance(pattern);
    }
    await this.maybeAutoScale();
  }

  /** Renews every lease; one that is gone is dropped at once (someone else may own the partition already). */
  private async renew(): Promise<void> {
    const { sessionTimeoutMs } = this.settings;
    const sentAt = this.now();
    await Promise.all(
      [...this.owned.values()].map(async (p) => {
        let renewed: unknown;
        try {
          renewed = await this.redis.rseRenewLease(this.keys.leaseOf(p.stream, this.settings.group), p.lease, sessionTimeoutMs);
        } catch (error) {
          return; // unreachable: keep acting until validUntil, then holds() says no
        }
        if (Number(renewed) === 1) {
          // The lease expires sessionTimeoutMs after Redis ran the renewal, which is after sentAt; a margin for clock rate.
          p.validUntil = sentAt + sessionTimeoutMs - Math.max(50, Math.floor(sessionTimeoutMs / 10));
          return;
        }
        this.owned.delete(p.stream);
        this.logger.warn(`Lost the lease of a partition (renewed too late); it is handled elsewhere now ${logIds({ stream: p.stream, group: this.settings.group })}`);
        this.hooks.lost(p);
      }),
    );
  }

  private async balance(pattern: string): Promise<void> {
    const { group, consumer, sessionTimeoutMs, balanced } = this.settings;
    const layout = await this.partitioning.layoutOf(pattern);
    await this.ensureGroups(pattern, layout);
    const members = (await this.redis.rseHeartbeat(this.keys.members(pattern, group), consumer, sessionTimeoutMs, '0')) as string[];
    const count = readablePartitions(layout);
    const owned = [...this.owned.values()].filter((p) => p.pattern === pattern && !this.releasing.has(p.stream)).length;
    // Holding exactly its share already, a consumer's plan changes nothing: skip reading every partition's lease (at
    // 10,000 partitions that read was most of the idle load).
    if (owned === (balanced ? quotaOf(consumer, members, count) : count)) return;
    const partitions = Array.from({ length: count }, (_, i) => i);
    const leases = await Promise.all(partitions.map((p) => this.redis.get(this.keys.leaseOf(this.keys.partition(pattern, p), group))));
    const owners = new Map<number, string>();
    leases.forEach((lease, p) => {
      if (lease) owners.set(p, lease.slice(0, lease.lastIndexOf('|')));
    });
    const plan = planAssignment({ self: consumer, members, owners, partitions, balanced });
    for (const p of plan.release) {
      const owned = this.owned.get(this.keys.partition(pattern, p));
      if (owned) void this.release(owned);
    }
    // Taken in concurrent batches (one round trip per batch, not per partition).
    for (let i = 0; i < plan.acquire.length && this.running; i += ACQUIRE_BATCH) {
      await Promise.all(plan.acquire.slice(i, i + ACQUIRE_BATCH).map((p) => this.acquire(pattern, p)));
    }
  }

  private async acquire(pattern: string, p: number): Promise<void> {
    const { group, consumer, sessionTimeoutMs } = this.settings;
    const stream = this.keys.partition(pattern, p);
    if (this.owned.has(stream) || !this.running) return;
    const sentAt = this.now();
    const lease = (await this.redis.rseAcquireLease(this.keys.leaseOf(stream, group), this.keys.fenceOf(stream, group), consumer, sessionTimeoutMs)) as string | null;
    if (!lease) return; // someone was faster; the next heartbeat plans again
    const partition = { pattern, partition: p, stream, lease, validUntil: sentAt + sessionTimeoutMs - Math.max(50, Math.floor(sessionTimeoutMs / 10)) };
    this.owned.set(stream, partition);
    try {
      await this.hooks.assigned(partition);
    } catch (error) {
      this.logger.warn(`Could not start handling an assigned partition; giving it back: ${errorText(error)} ${logIds({ stream, group })}`);
      await this.release(partition);
    }
  }

  /** Revokes (handlers finish), then gives the lease back if it is still ours. */
  private async release(partition: LeasedPartition): Promise<void> {
    if (this.releasing.has(partition.stream)) return;
    this.releasing.add(partition.stream);
    try {
      await this.hooks.revoked(partition);
      await this.redis.rseReleaseLease(this.keys.leaseOf(partition.stream, this.settings.group), partition.lease).catch(() => undefined); // expires anyway
    } finally {
      this.owned.delete(partition.stream);
      this.releasing.delete(partition.stream);
    }
  }

  /**
   * Consumer groups on every partition: those of the topic's first layout start at `groupStartId`; partitions
   * added later start at 0 (everything written to them belongs to this group).
   */
  private async ensureGroups(pattern: string, layout: PartitionLayout): Promise<void> {
    for (let p = 0; p < readablePartitions(layout); p++) {
      const stream = this.keys.partition(pattern, p);
      if (this.groupsCreated.has(stream)) continue;
      try {
        await this.redis.xgroup('CREATE', stream, this.settings.group, p < layout.counts[0] ? this.settings.groupStartId : '0', 'MKSTREAM');
      } catch (error) {
        if (!/BUSYGROUP/.test(errorText(error))) throw error;
      }
      this.groupsCreated.add(stream);
    }
  }

  /** Forgets which groups exist (after NOGROUP: Redis lost them), so the next heartbeat creates them again. */
  forgetGroups(): void {
    this.groupsCreated.clear();
  }

  private async maybeAutoScale(): Promise<void> {
    const every = this.settings.autoScaleEveryMs;
    if (!every || this.now() - this.lastAutoScale < every) return;
    this.lastAutoScale = this.now();
    for (const pattern of this.settings.patterns) {
      const scaled = await this.partitioning.autoScale(pattern, this.settings.consumer, this.settings.group);
      if (scaled !== undefined) this.partitioning.invalidate(pattern);
    }
  }
}
