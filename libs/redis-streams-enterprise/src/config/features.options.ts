import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';

/*
 * The seed's four feature sections, with the seed's field names. Their behaviour is delivered by the ordering,
 * partitioning, schema and replay capabilities; this file types, validates and defaults them.
 */

/** Message ordering (seed section 1). */
export class OrderingOptions {
  /** @default false */
  @IsBoolean()
  enabled = false;

  /**
   * `none`: parallel; `partition`: in order per partition (per key with `partitionKey`); `global`: one total order
   * per topic; `causal`: a message waits for the messages it names.
   * @default 'none'
   */
  @IsIn(['global', 'partition', 'causal', 'none'])
  strategy: 'global' | 'partition' | 'causal' | 'none' = 'none';

  /**
   * Payload field whose value orders messages per key.
   * @default undefined
   */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_.$-]{1,128}$/, { message: 'must be a payload field name (dots for nesting)' })
  partitionKey?: string;

  /** Messages handled at once where the strategy allows parallelism. @default 10 */
  @IsInt()
  @Min(1)
  @Max(10_000)
  maxConcurrency = 10;

  /** How long a message may wait for its predecessors. @default 30000 */
  @IsInt()
  @Min(1)
  @Max(86_400_000)
  timeoutMs = 30_000;

  /** Attempts for a message that blocks its key or partition before it is dead-lettered. @default 3 */
  @IsInt()
  @Min(1)
  @Max(1_000)
  retryAttempts = 3;

  /**
   * `causal`: what happens to a message whose dependencies are still not handled after `timeoutMs`:
   * `deadLetter` parks it in the dead-letter stream (reason `causal-timeout`) so an operator can redrive it once its
   * causes exist; `process` handles it anyway (availability over order).
   * @default 'deadLetter'
   */
  @IsIn(['deadLetter', 'process'])
  causalTimeoutPolicy: 'deadLetter' | 'process' = 'deadLetter';
}

/**
 * Exactly-once processing (seed section 1, "Exactly-Once Delivery"). Idempotent publish needs no switch: a message
 * emitted with an idempotency key is stored once per `windowMs` whatever this section says.
 */
export class ExactlyOnceOptions {
  /**
   * Record each handled message (its idempotency key, else its message id) per consumer group, atomically with its
   * XACK, and skip messages recorded already; `ctx.transaction()` effects commit in that same step.
   * @default false
   */
  @IsBoolean()
  enabled = false;

  /** How long publish and processing records are kept: duplicates further apart are not detected. @default 86400000 */
  @IsInt()
  @Min(1_000)
  @Max(30 * 86_400_000)
  windowMs = 86_400_000;
}

/** Extracts the partition key from a message payload. */
export type PartitionKeyExtractor = (message: unknown) => string | number | undefined | null;

/** Partitioning (seed section 2). */
export class PartitioningOptions {
  /** @default false */
  @IsBoolean()
  enabled = false;

  /** @default 'hash' */
  @IsIn(['hash', 'roundRobin', 'keyBased', 'dynamic'])
  strategy: 'hash' | 'roundRobin' | 'keyBased' | 'dynamic' = 'hash';

  /** Streams per topic. @default 16 */
  @IsInt()
  @Min(1)
  @Max(10_000)
  partitionCount = 16;

  /** Load or lag per partition above which `dynamic` adds partitions. @default 1000 */
  @IsInt()
  @Min(1)
  rebalanceThreshold = 1_000;

  /** How often (ms) load is checked for rebalancing and scaling. @default 60000 */
  @IsInt()
  @Min(1_000)
  rebalanceInterval = 60_000;

  /**
   * Payload field used as partition key by `keyBased` when no extractor is given.
   * @default undefined
   */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_.$-]{1,128}$/, { message: 'must be a payload field name (dots for nesting)' })
  partitionKey?: string;

  /**
   * Custom partition key. Functions are not validated beyond their type.
   * @default undefined
   */
  @IsOptional()
  partitionKeyExtractor?: PartitionKeyExtractor;

  /**
   * A consumer that has not renewed its partition leases for this long is presumed dead and its partitions move to
   * the others (Kafka's session.timeout.ms); leases are renewed every third of it. @default 10000
   */
  @IsInt()
  @Min(300)
  @Max(600_000)
  sessionTimeoutMs = 10_000;

  /** Spread partitions evenly over live consumers. @default true */
  @IsBoolean()
  loadBalancing = true;

  /** Grow and shrink the partition count with load (`dynamic`). @default false */
  @IsBoolean()
  autoScaling = false;

  /** @default 1 */
  @IsInt()
  @Min(1)
  @Max(10_000)
  minPartitions = 1;

  /** @default 64 */
  @IsInt()
  @Min(1)
  @Max(10_000)
  maxPartitions = 64;
}

/** Schema registry and validation (seed section 3). */
export class SchemaOptions {
  /** @default false */
  @IsBoolean()
  enabled = false;

  /** Where schemas live. @default 'redis' */
  @IsIn(['redis', 'external'])
  registry: 'redis' | 'external' = 'redis';

  /** `strict` refuses/dead-letters invalid messages, `warn` logs, `ignore` skips. @default 'strict' */
  @IsIn(['strict', 'warn', 'ignore'])
  validationMode: 'strict' | 'warn' | 'ignore' = 'strict';

  /** Assign versions to schemas registered without one. @default false */
  @IsBoolean()
  autoEvolution = false;

  /** Refuse incompatible registrations. @default true */
  @IsBoolean()
  compatibilityCheck = true;

  /** @default 'semantic' */
  @IsIn(['semantic', 'timestamp', 'incremental'])
  versioningStrategy: 'semantic' | 'timestamp' | 'incremental' = 'semantic';

  /** Versions kept per event type. @default 10 */
  @IsInt()
  @Min(1)
  @Max(10_000)
  maxVersions = 10;
}

/** Replay (seed section 4). */
export class ReplayOptions {
  /** @default false */
  @IsBoolean()
  enabled = false;

  /** Upper bound of messages one replay may move. @default 100000 */
  @IsInt()
  @Min(1)
  maxReplayMessages = 100_000;

  /** Upper bound (ms) of one replay's duration. @default 300000 */
  @IsInt()
  @Min(1)
  replayTimeout = 300_000;

  /** Report gaps and invalid messages of a replay. @default true */
  @IsBoolean()
  validateReplay = true;

  /** Replay in stream order. @default true */
  @IsBoolean()
  preserveOrdering = true;

  /** Entries read per page. @default 100 */
  @IsInt()
  @Min(1)
  @Max(10_000)
  batchSize = 100;

  /** Compress what replay copies into another stream. @default false */
  @IsBoolean()
  compression = false;
}
