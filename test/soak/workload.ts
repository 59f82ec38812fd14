import type { RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';

/** Topics of the soak workload. */
export const TOPIC = {
  /** At-least-once events, some of them poison (always throw → dead letters). */
  plain: 'soak.plain',
  /** Request-reply (served by the plain consumers). */
  rpc: 'soak.rpc',
  /** Partitioned (`dynamic`, so the nemesis can rescale it), ordered per key, exactly-once effects. */
  keyed: 'soak.keyed',
  /** One global order, exactly-once effects. */
  global: 'soak.global',
  /** Where the replay nemesis copies soak.plain to (ReplayManager target stream). */
  replayed: 'soak.plain.replayed',
  /** At-least-once events validated against a registered JSON Schema (strict); some are invalid → dead letters. */
  checked: 'soak.checked',
} as const;

/** The schema of soak.checked, registered by the harness before the workload starts. */
export const CHECKED_SCHEMA = {
  type: 'object',
  properties: { id: { type: 'string', maxLength: 200 }, seq: { type: 'integer', minimum: 0 }, n: { type: 'integer' } },
  required: ['id', 'seq', 'n'],
} as const;

/** The topics whose handling is at-least-once (no effect list; a finished handling counts as delivered). */
export const AT_LEAST_ONCE: ReadonlySet<string> = new Set([TOPIC.plain, TOPIC.checked]);

export const GROUP = 'soak';
export const MAX_PARTITIONS = 8;
export const INITIAL_PARTITIONS = 3;

/** Every workload feature; `--features` selects a subset. */
export const ALL_FEATURES = ['plain', 'poison', 'requests', 'schema', 'keyed', 'global', 'redrive', 'replay', 'scale'] as const;
export type Feature = (typeof ALL_FEATURES)[number];

/** Kinds of consumer process (the ordering strategy is per process, so each kind is its own app). */
export type ConsumerKind = 'plain' | 'keyed' | 'global';

/** The connection part of every config: a URL (single, replicated: the proxy) or cluster seed nodes. */
export type SoakConnection = { url: string } | { cluster: { nodes: { host: string; port: number }[] } };

/** A handled message lands here, in the partition's hash slot, written by ctx.transaction() (committed with the ack). */
export function effectsKey(prefix: string, topic: string, partition: number): string {
  return `${prefix}:{${topic}#${partition}}:effects`;
}

/**
 * The library config of a process of a kind (producers use the same one per topic, so they route alike). Fast claims,
 * short sessions and a short blocking watchdog, so recovery from every fault takes seconds, not minutes.
 */
export function configFor(kind: ConsumerKind | 'admin', prefix: string, connection: SoakConnection, topology: string): RedisStreamsEnterpriseConfig {
  const base: RedisStreamsEnterpriseConfig = {
    connection: {
      ...connection,
      blockingWatchdogMs: 2_000,
      // Replicated topology: an emit resolves only once a replica has it, so a promotion cannot lose a resolved emit.
      ...(topology === 'replicated' ? { waitReplicas: 1, waitTimeoutMs: 1_000 } : {}),
    },
    streams: { keyPrefix: prefix },
    consumer: { group: GROUP, blockMs: 200, claimIdleMs: 3_000, reclaimIntervalMs: 250, shutdownTimeoutMs: 3_000, concurrency: 16, batchSize: 16 },
    retry: { attempts: 3, backoff: { type: 'fixed', delayMs: 100, maxDelayMs: 100, jitter: 0 } },
    client: { requestTimeoutMs: 5_000 },
    replay: { enabled: true },
    // Strict validation of the topics that have a registered schema (soak.checked); the others have none.
    schema: { enabled: true, validationMode: 'strict' },
  } as RedisStreamsEnterpriseConfig;
  if (kind === 'keyed') {
    return {
      ...base,
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'key', maxConcurrency: 8 },
      partitioning: {
        enabled: true,
        strategy: 'dynamic',
        partitionCount: INITIAL_PARTITIONS,
        maxPartitions: MAX_PARTITIONS,
        partitionKey: 'key',
        sessionTimeoutMs: 2_500,
      },
      exactlyOnce: { enabled: true },
    } as RedisStreamsEnterpriseConfig;
  }
  if (kind === 'global') {
    return {
      ...base,
      ordering: { enabled: true, strategy: 'global' },
      partitioning: { enabled: false, sessionTimeoutMs: 2_500 },
      exactlyOnce: { enabled: true },
    } as RedisStreamsEnterpriseConfig;
  }
  return base;
}

/** A workload message. `id` is unique over the whole run: `<producer>.<incarnation>.<stream>.<seq>`. */
export interface SoakMessage {
  id: string;
  /** Per-key (keyed) or per-producer-incarnation (global) sequence number, for the order checks. */
  seq: number;
  key?: string;
  poison?: boolean;
  /** soak.checked: a payload that breaks the schema (`n` not an integer), sent by a producer that does not validate. */
  invalid?: boolean;
  n?: number | string;
}
