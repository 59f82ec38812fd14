import { Inject, Injectable } from '@nestjs/common';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import type { LaneRule } from './ordered-dispatcher.js';

/** What the current configuration guarantees, in plain data (`OrderingManager.getOrderingGuarantees()`). */
export interface OrderingGuarantees {
  readonly strategy: 'none' | 'partition' | 'global' | 'causal';
  /** What is handled in order: nothing, each partition, each key within a partition, the whole topic, or causes first. */
  readonly scope: 'none' | 'partition' | 'key' | 'topic' | 'dependencies';
  /** Payload field of the per-key order, if any. */
  readonly orderingKey: string | null;
  /** Most handlers running at once in one consumer. */
  readonly maxConcurrency: number;
  /** Partitions per topic now configured for new topics (the live count is in PartitioningManager). */
  readonly partitions: number;
  /** Each partition is handled by at most one live consumer of a group at a time (leases with fencing tokens). */
  readonly singleOwnerPerPartition: boolean;
  /** Attempts of a message that holds up its key/partition before it is dead-lettered and the rest continues. */
  readonly retryAttempts: number;
  readonly delivery: 'at-least-once' | 'exactly-once-for-redis-effects';
  /** Duplicate publishes with one idempotency key within this window are stored once. */
  readonly idempotentPublishWindowMs: number;
  /** Plain sentences: what is NOT guaranteed. */
  readonly limits: readonly string[];
}

/**
 * Ordering (seed section 1): decides which entries of a partition may run side by side (`none`: all; `partition`:
 * one at a time per partition, or per key with `partitionKey`; `global`: one at a time per topic, which has a single
 * partition; `causal`: any order except that a message waits for the messages it names) and reports what the
 * configuration guarantees.
 */
@Injectable()
export class OrderingManager implements LaneRule {
  readonly config: ResolvedRedisStreamsConfig;

  constructor(@Inject(REDIS_STREAMS_OPTIONS) config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig) {
    this.config = resolveConfig(config);
  }

  /** The strategy in effect (`none` while ordering is disabled). */
  get strategy(): OrderingGuarantees['strategy'] {
    return this.config.ordering.enabled ? this.config.ordering.strategy : 'none';
  }

  laneOf(stream: string, entry: DeliveredEntry): string | null {
    switch (this.strategy) {
      case 'global':
        return stream;
      case 'partition':
        return this.config.ordering.partitionKey === undefined ? stream : `${stream}\n${entry.fields.key ?? ''}`;
      default:
        return null;
    }
  }

  /** Handlers of one consumer that may run at once. */
  get maxConcurrency(): number {
    return this.config.ordering.enabled ? this.config.ordering.maxConcurrency : this.config.consumer.concurrency;
  }

  getOrderingGuarantees(): OrderingGuarantees {
    const { ordering, partitioning, exactlyOnce } = this.config;
    const strategy = this.strategy;
    const partitioned = partitioning.enabled || strategy !== 'none';
    const scope: OrderingGuarantees['scope'] =
      strategy === 'global'
        ? 'topic'
        : strategy === 'causal'
          ? 'dependencies'
          : strategy === 'partition'
            ? ordering.partitionKey === undefined
              ? 'partition'
              : 'key'
            : 'none';
    const limits = [
      'A handler that fails holds up only its key (or partition) while it is retried; after the last attempt it is dead-lettered and the messages behind it continue.',
      'Effects outside Redis (HTTP calls, other databases) are at-least-once: a crash after such an effect and before the commit repeats it.',
      'On Redis failover, writes not yet replicated can be lost (asynchronous replication); connection.waitReplicas narrows that window.',
    ];
    if (strategy === 'causal') {
      limits.push(
        `A message whose dependencies are not handled within ${ordering.timeoutMs} ms is ${ordering.causalTimeoutPolicy === 'deadLetter' ? 'dead-lettered (reason causal-timeout)' : 'handled anyway'}.`,
      );
    }
    if (partitioning.enabled && partitioning.strategy === 'roundRobin') {
      limits.push('roundRobin spreads messages without a key over all partitions: only messages with a key keep their order.');
    }
    if (!exactlyOnce.enabled) limits.push('Without exactlyOnce.enabled a message can be handled twice (a crash between handler and acknowledgement).');
    return {
      strategy,
      scope,
      orderingKey: strategy === 'partition' ? (ordering.partitionKey ?? null) : null,
      maxConcurrency: this.maxConcurrency,
      partitions: partitioning.enabled ? partitioning.partitionCount : 1,
      singleOwnerPerPartition: partitioned,
      retryAttempts: partitioned && ordering.enabled ? ordering.retryAttempts : this.config.retry.attempts,
      delivery: exactlyOnce.enabled ? 'exactly-once-for-redis-effects' : 'at-least-once',
      idempotentPublishWindowMs: exactlyOnce.windowMs,
      limits,
    };
  }
}
