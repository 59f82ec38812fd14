import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { classifyRedisError } from '../connection/redis-error-codes.js';
import { parseGroupsInfo, parseStreamInfo } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { doorbellFor } from '../cluster/doorbell.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import { errorText } from '../observability/log-format.js';
import { AuditTrail, type AuditContext } from '../observability/audit-trail.js';
import { createPartitioner, extractKey, Partitioner } from './partitioner.js';
import { parseLayout, partitionCountOf, readablePartitions, serializeLayout, type PartitionLayout } from './partition-layout.js';
import { PartitionLayoutError, PartitionScaleError } from '../errors/partition-layout.error.js';

/** Where one message goes. */
export interface PartitionRoute {
  readonly stream: string;
  readonly partition: number;
  /** Partition / ordering key stamped on the entry (`key` field), if any. */
  readonly key?: string;
  readonly epoch: number;
}

/** How a message's partition is chosen besides its payload. */
export interface RouteOptions {
  readonly partitionKey?: string;
  readonly idempotencyKey?: string;
}

/** One partition in `getPartitionStats()`. */
export interface PartitionStats {
  readonly partition: number;
  readonly stream: string;
  /** Entries stored (XLEN). */
  readonly length: number;
  /** Entries not yet delivered to the group (null when Redis cannot tell). */
  readonly lag: number | null;
  /** Entries delivered to the group and not yet acknowledged. */
  readonly pending: number;
  /** Consumer holding the partition's lease, or null when none does. */
  readonly owner: string | null;
  /** Entries added per second since the previous call (null on the first call). */
  readonly ratePerSecond: number | null;
  /** False for partitions of an earlier, larger layout that only drain. */
  readonly writable: boolean;
}

/** How long a topic's layout is trusted before it is read again (a producer also re-reads it when Redis refuses). */
const LAYOUT_TTL_MS = 2_000;

/**
 * Partitioning (seed section 2): a topic with partitioning or ordering enabled is a set of partition streams, each
 * with its own Redis Cluster hash tag. This provider chooses the partition of each published message (`hash`:
 * jump consistent hash of the partition key; `roundRobin`; `keyBased`; `dynamic`: hash over a count that changes),
 * keeps the topic's layout (partition count per epoch, stored in Redis so every process routes alike), changes the
 * count (`scalePartitions`) without breaking per-key order, and reports per-partition statistics.
 */
@Injectable()
export class PartitioningManager implements OnApplicationShutdown {
  private readonly logger = new Logger(PartitioningManager.name);
  readonly config: ResolvedRedisStreamsConfig;
  private readonly keys: StreamKeys;
  private readonly partitioner: Partitioner;
  private readonly connection?: LazyConnection;
  private readonly layouts = new Map<string, { layout: PartitionLayout; at: number }>();
  private readonly loading = new Map<string, Promise<PartitionLayout>>();
  private readonly rates = new Map<string, { added: number; at: number }>();
  /** Records partition rescales (compliance.audit). */
  private readonly audit: AuditTrail;

  /**
   * @param partitioner replaces the strategy's partitioner (a custom `Partitioner` provider).
   * @param redis a connection to use (the server's or client's); without it the manager opens its own on first use.
   */
  constructor(
    @Inject(REDIS_STREAMS_OPTIONS) config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig,
    @Optional() partitioner?: Partitioner,
    @Optional() private readonly redis?: () => Promise<ScriptedRedis>,
  ) {
    this.config = resolveConfig(config);
    this.keys = new StreamKeys(this.config.streams.keyPrefix);
    this.partitioner = partitioner ?? createPartitioner(this.config.partitioning);
    if (!redis) this.connection = new LazyConnection(this.config.connection, 'partitioning', 'PartitioningManager');
    this.audit = new AuditTrail(this.config, () => this.connectionFor());
  }

  /** True when topics are partitioned: partitioning enabled, or an ordering strategy other than `none`. */
  get enabled(): boolean {
    const { partitioning, ordering } = this.config;
    return partitioning.enabled || (ordering.enabled && ordering.strategy !== 'none');
  }

  /** Partition count a new topic starts with. */
  get initialCount(): number {
    return this.config.partitioning.enabled ? this.config.partitioning.partitionCount : 1;
  }

  /**
   * The topic's layout, created with `initialCount` partitions on first use. Cached; after LAYOUT_TTL_MS the cached
   * layout is still returned while one shared request refreshes it (`fresh` waits for Redis). Serving it stale is safe:
   * the publish script refuses a write routed by an outdated layout and the producer routes it again, in order.
   * Never making some callers wait for a round trip while others use the cache keeps concurrent publishes in order.
   */
  async layoutOf(pattern: string, fresh = false): Promise<PartitionLayout> {
    const cached = this.layouts.get(pattern);
    if (cached && !fresh) {
      if (Date.now() - cached.at >= LAYOUT_TTL_MS) void this.loadLayout(pattern).catch(() => undefined); // keeps the cached one
      return cached.layout;
    }
    return this.loadLayout(pattern);
  }

  /** Reads (or creates) the layout from Redis; concurrent calls share one request. */
  private loadLayout(pattern: string): Promise<PartitionLayout> {
    const running = this.loading.get(pattern);
    if (running) return running;
    const load = (async () => {
      const redis = await this.connectionFor();
      const key = this.keys.layout(pattern);
      let layout = parseLayout(await redis.get(key), pattern);
      if (!layout) {
        await redis.set(key, serializeLayout({ epoch: 0, counts: [this.initialCount] }), 'NX');
        layout = parseLayout(await redis.get(key), pattern);
        if (!layout) throw new PartitionLayoutError('INVALID_PARTITION_LAYOUT', pattern, `The partition layout of "${pattern}" could not be created (it vanished right after; is the key evicted?)`);
      }
      if (!this.layouts.has(pattern) && layout.counts[0] !== this.initialCount && this.config.partitioning.enabled) {
        this.logger.warn(
          `Topic "${pattern}" exists with ${partitionCountOf(layout)} partitions; partitioning.partitionCount ` +
            `(${this.initialCount}) only applies to new topics`,
        );
      }
      this.layouts.set(pattern, { layout, at: Date.now() });
      return layout;
    })().finally(() => this.loading.delete(pattern));
    this.loading.set(pattern, load);
    return load;
  }

  /** Forgets a cached layout (a write was refused because the layout changed). */
  invalidate(pattern: string): void {
    this.layouts.delete(pattern);
  }

  /** Stream of partition `n` of a topic. */
  streamOf(pattern: string, partition: number): string {
    return this.keys.partition(pattern, partition);
  }

  /**
   * Where a message would go under the current layout. Changes nothing: a keyless message of `roundRobin` (or
   * `hash` without a key) is answered with the partition the next keyless message sent through a client sharing this
   * partitioner would take, and calling it does not move that rotation.
   * @throws PartitionKeyMissingError with the `keyBased` strategy and no key.
   */
  async route(pattern: string, data: unknown, options: RouteOptions = {}): Promise<PartitionRoute> {
    return this.routeBy(await this.layoutOf(pattern), pattern, data, options, true);
  }

  /**
   * The route of a message that is being sent (the client's publisher, transaction emits): unlike `route`, it
   * advances the rotation of keyless messages (`roundRobin`, and `hash` without a key).
   * @internal
   */
  async routeToSend(pattern: string, data: unknown, options: RouteOptions = {}): Promise<PartitionRoute> {
    return this.routeBy(await this.layoutOf(pattern), pattern, data, options, false);
  }

  /** `routeToSend` without waiting, when the topic's layout is cached (possibly stale, see layoutOf); else undefined. @internal */
  routeCachedToSend(pattern: string, data: unknown, options: RouteOptions = {}): PartitionRoute | undefined {
    const cached = this.layouts.get(pattern);
    if (!cached) return undefined;
    if (Date.now() - cached.at >= LAYOUT_TTL_MS) void this.loadLayout(pattern).catch(() => undefined);
    return this.routeBy(cached.layout, pattern, data, options, false);
  }

  private routeBy(layout: PartitionLayout, pattern: string, data: unknown, options: RouteOptions, preview: boolean): PartitionRoute {
    const { partitioning, ordering } = this.config;
    const key =
      options.partitionKey ??
      extractKey(data, {
        partitionKey: partitioning.partitionKey ?? ordering.partitionKey,
        partitionKeyExtractor: partitioning.partitionKeyExtractor,
      });
    const choice = this.partitioner.choose({ pattern, data, key, idempotencyKey: options.idempotencyKey, preview }, partitionCountOf(layout));
    return { stream: this.keys.partition(pattern, choice.partition), partition: choice.partition, key: choice.key ?? key, epoch: layout.epoch };
  }

  /**
   * Changes a topic's partition count (`strategy: 'dynamic'` only; every producer and consumer of the topic must use
   * it). Per-key order survives: writes routed by the old layout are refused from
   * the switch on (producers re-route), a control entry marks the end of the old epoch in every old partition, and
   * consumers handle a partition's new-epoch entries only after the partitions its keys may have come from were
   * processed up to that mark (the parent-first rule, see parentsOf). New partitions get `group`'s consumer group
   * (other groups create theirs when their consumers see the new layout).
   * @returns the new layout (unchanged when the count is the current one).
   * Recorded in the audit trail (failures too; `by` names the actor).
   */
  async scalePartitions(pattern: string, partitionCount: number, groups: readonly string[] = [this.config.consumer.group], by?: AuditContext): Promise<PartitionLayout> {
    const spec = { action: 'partitions.scale', target: { pattern, groups: [...groups] }, params: { partitionCount } } as const;
    return this.audit.around(spec, by, () => this.scaleNow(pattern, partitionCount, groups), (layout) => ({ epoch: layout.epoch, partitions: partitionCountOf(layout) }));
  }

  private async scaleNow(pattern: string, partitionCount: number, groups: readonly string[]): Promise<PartitionLayout> {
    const { minPartitions, maxPartitions, strategy } = this.config.partitioning;
    if (strategy !== 'dynamic') {
      // Producers of a fixed layout publish without the epoch check, so only `dynamic` topics may change their count.
      throw new PartitionScaleError(pattern, partitionCount, `the partition count can only change with partitioning.strategy 'dynamic' (it is '${strategy}')`);
    }
    if (!Number.isInteger(partitionCount) || partitionCount < 1 || partitionCount > Math.max(maxPartitions, 1)) {
      throw new PartitionScaleError(pattern, partitionCount, `partitionCount must be an integer between 1 and partitioning.maxPartitions (${maxPartitions})`);
    }
    if (this.config.partitioning.enabled && partitionCount < minPartitions) {
      throw new PartitionScaleError(pattern, partitionCount, `partitionCount must not be below partitioning.minPartitions (${minPartitions})`);
    }
    const redis = await this.connectionFor();
    for (let attempt = 0; attempt < 5; attempt++) {
      const layout = await this.layoutOf(pattern, true);
      const current = partitionCountOf(layout);
      if (current === partitionCount) {
        // A scaler that stopped between publishing the layout and switching every partition left some behind: their
        // children would wait for end-of-epoch marks forever. Switching is idempotent, so finish the job.
        await this.closeEpochs(redis, pattern, layout.epoch, readablePartitions(layout));
        return layout;
      }
      const epoch = layout.epoch + 1;
      const next: PartitionLayout = { epoch, counts: [...layout.counts, partitionCount] };
      const readable = readablePartitions(layout);
      // Partitions that never existed get their group(s) at the start and accept writes of the new epoch only.
      for (let p = readable; p < partitionCount; p++) {
        const stream = this.keys.partition(pattern, p);
        for (const group of groups) await this.createGroup(redis, stream, group);
        await redis.set(this.keys.epochOf(stream), String(epoch));
      }
      const swapped = await redis.rseSwapLayout(this.keys.layout(pattern), String(layout.epoch), serializeLayout(next));
      if (Number(swapped) !== 1) continue; // someone else changed the layout meanwhile: start over from theirs
      // Close the old epoch in every partition that exists; partitions created above are at the new epoch already.
      // A producer that read the new layout first switches a partition itself (publish script), which is the same.
      await this.closeEpochs(redis, pattern, epoch, readable);
      this.layouts.set(pattern, { layout: next, at: Date.now() });
      this.logger.log(`Topic "${pattern}" now has ${partitionCount} partitions (was ${current}; layout epoch ${epoch})`);
      return next;
    }
    throw new PartitionLayoutError('STALE_PARTITION_LAYOUT', pattern, `The layout of "${pattern}" kept changing while it was scaled; nothing was changed by this call, try again`);
  }

  /** Switches partitions 0..count-1 to `epoch` (idempotent) and rings their end-of-epoch entries on the doorbell. */
  private async closeEpochs(redis: ScriptedRedis, pattern: string, epoch: number, count: number): Promise<void> {
    const streams = Array.from({ length: count }, (_, p) => this.keys.partition(pattern, p));
    for (const stream of streams) await redis.rseCloseEpoch(stream, this.keys.epochOf(stream), String(epoch));
    // The end-of-epoch entries are read at once, not at the next sweep: new-epoch entries wait for them.
    await doorbellFor(redis, this.keys, this.config.streams.doorbell)?.ringAndDrain(...streams);
  }

  /** Per partition: length, lag and pending of `group`, lease owner, rate since the previous call. */
  async getPartitionStats(pattern: string, group = this.config.consumer.group): Promise<PartitionStats[]> {
    const redis = await this.connectionFor();
    const layout = await this.layoutOf(pattern, true);
    const writable = partitionCountOf(layout);
    const now = Date.now();
    const stats: PartitionStats[] = [];
    for (let partition = 0; partition < readablePartitions(layout); partition++) {
      const stream = this.keys.partition(pattern, partition);
      let length = 0;
      let added = 0;
      let lag: number | null = null;
      let pending = 0;
      try {
        const [info, groups] = await Promise.all([redis.xinfo('STREAM', stream), redis.xinfo('GROUPS', stream)]);
        const parsed = parseStreamInfo(info);
        length = parsed.length;
        added = parsed.entriesAdded ?? length;
        const mine = parseGroupsInfo(groups).find((g) => g.name === group);
        lag = mine?.lag ?? null;
        pending = mine?.pending ?? 0;
      } catch (error) {
        if (!/no such key/i.test(errorText(error))) throw error; // a partition nobody wrote to yet
      }
      const lease = await redis.get(this.keys.leaseOf(stream, group));
      const previous = this.rates.get(stream);
      this.rates.set(stream, { added, at: now });
      const ratePerSecond = previous && now > previous.at ? ((added - previous.added) * 1_000) / (now - previous.at) : null;
      stats.push({ partition, stream, length, lag, pending, owner: lease ? lease.slice(0, lease.lastIndexOf('|')) : null, ratePerSecond, writable: partition < writable });
    }
    return stats;
  }

  /**
   * One auto-scaling decision (`dynamic` with `autoScaling`), made by whichever consumer holds the topic's scaler
   * lease: grow (double, up to maxPartitions) when the average lag per partition passes rebalanceThreshold; shrink
   * (halve, down to minPartitions) when nothing is waiting or pending. Returns the new count when it changed.
   */
  async autoScale(pattern: string, consumer: string, group = this.config.consumer.group): Promise<number | undefined> {
    const { autoScaling, rebalanceThreshold, minPartitions, maxPartitions, rebalanceInterval } = this.config.partitioning;
    if (!autoScaling) return undefined;
    const redis = await this.connectionFor();
    const leader = await redis.set(this.keys.scaler(pattern), consumer, 'PX', rebalanceInterval * 2, 'NX');
    const holder = leader ? consumer : await redis.get(this.keys.scaler(pattern));
    if (holder !== consumer) return undefined;
    await redis.pexpire(this.keys.scaler(pattern), rebalanceInterval * 2);
    const stats = await this.getPartitionStats(pattern, group);
    const live = stats.filter((s) => s.writable);
    const count = live.length;
    const backlog = live.reduce((sum, s) => sum + (s.lag ?? 0) + s.pending, 0);
    let target = count;
    if (backlog / count > rebalanceThreshold) target = Math.min(maxPartitions, count * 2);
    else if (stats.every((s) => (s.lag ?? 0) === 0 && s.pending === 0)) target = Math.max(minPartitions, Math.floor(count / 2));
    if (target === count) return undefined;
    await this.scalePartitions(pattern, target, [group], { actor: `auto-scaling:${consumer}` });
    return target;
  }

  /** Creates a consumer group at the start of a stream (and the stream); an existing group is left as it is. */
  async createGroup(redis: ScriptedRedis, stream: string, group: string): Promise<void> {
    try {
      await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    } catch (error) {
      if (classifyRedisError(error) !== 'busygroup') throw error;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  async close(): Promise<void> {
    await this.connection?.close();
  }

  private connectionFor(): Promise<ScriptedRedis> {
    if (this.redis) return this.redis();
    return (this.connection as LazyConnection).get();
  }
}
