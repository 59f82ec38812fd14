import type { RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';

/** Consumer group of the tour's two consumers. */
export const TOUR_GROUP = 'tour';

/** Partitions of each tour topic. */
export const TOUR_PARTITIONS = 4;

/**
 * One configuration for the tour's producer and its two consumers (producer and consumers of partitioned topics must
 * agree on `partitioning` and `ordering`). Every topic is partitioned by its payload's `accountId` and handled in
 * order per account; processing is exactly-once for Redis effects; schemas are validated strictly; replay is on.
 * Delays are short so that retries and dead letters happen within a second.
 *
 * @param keyPrefix every key the tour writes starts with `<keyPrefix>:`.
 * @param consumerName this process instance's consumer name (unset: the library's host-pid-random default).
 */
export function tourConfig(redisUrl: string, keyPrefix: string, consumerName?: string): RedisStreamsEnterpriseConfig {
  return {
    connection: { url: redisUrl, connectionName: consumerName ?? 'tour-producer' },
    streams: { keyPrefix },
    consumer: {
      group: TOUR_GROUP,
      ...(consumerName ? { consumerName } : {}),
      blockMs: 1_000,
      claimIdleMs: 5_000,
      reclaimIntervalMs: 250,
      shutdownTimeoutMs: 3_000,
    },
    // Ordered topics retry a failing message in place (its account waits), ordering.retryAttempts times in all.
    retry: { attempts: 3, backoff: { type: 'fixed', delayMs: 100, maxDelayMs: 100, jitter: 0 } },
    client: { requestTimeoutMs: 5_000 },
    // A consumer that stops heartbeating loses its partitions after 3 s (heartbeat every second).
    partitioning: { enabled: true, strategy: 'hash', partitionCount: TOUR_PARTITIONS, partitionKey: 'accountId', sessionTimeoutMs: 3_000 },
    ordering: { enabled: true, strategy: 'partition', partitionKey: 'accountId', maxConcurrency: 16, retryAttempts: 3 },
    exactlyOnce: { enabled: true, windowMs: 600_000 },
    schema: { enabled: true, validationMode: 'strict', compatibilityCheck: true },
    replay: { enabled: true, batchSize: 200 },
    // Spans only once an OpenTelemetry SDK is registered (the tracing step registers one); free until then.
    observability: { tracing: { enabled: true } },
    // Erasure by subject (step 8): where each topic keeps its data subject; operator actions are audited as this actor.
    compliance: { actor: 'tour', subjects: { 'customers.*': { field: 'customerId' } } },
  };
}
