import type { PartitionKeyExtractor, PartitioningOptions } from '../config/features.options.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { PartitionKeyMissingError } from '../errors/partition-key-missing.error.js';
import { partitionForKey } from './jump-hash.js';

/** What a partitioner may look at to place one message. */
export interface PartitionInput {
  /** Pattern (route) of the message. */
  readonly pattern: string;
  /** The payload. */
  readonly data: unknown;
  /** Explicit partition key from the emit options; wins over everything else. */
  readonly key?: string;
  /** Used as the key when no other key is found, so duplicates of one message land in one partition. */
  readonly idempotencyKey?: string;
  /**
   * True when the caller only asks where the message would go (`PartitioningManager.route`) and sends nothing: a
   * partitioner with state (the rotation of keyless messages) must answer without changing it.
   */
  readonly preview?: boolean;
}

/** Where a message goes. `key` is the partition key that decided it, absent when none was used. */
export interface PartitionChoice {
  readonly partition: number;
  readonly key?: string;
}

/** Chooses the partition of a message. Abstract class = DI token. */
export abstract class Partitioner {
  /**
   * @param partitionCount current number of partitions of the topic (integer >= 1).
   * @returns a partition in `[0, partitionCount)`.
   * @throws PartitionKeyMissingError when the strategy requires a key and none is found.
   */
  abstract choose(input: PartitionInput, partitionCount: number): PartitionChoice;
}

/** Where a partitioner finds a message's key in its payload. */
export interface PartitionKeyOptions {
  /** Payload field (dot path, own properties only) holding the key. */
  readonly partitionKey?: string;
  /** Custom key; takes precedence over `partitionKey`. It may throw; the error reaches the emitter. */
  readonly partitionKeyExtractor?: PartitionKeyExtractor;
}

/** Input of `createPartitioner`: the partitioning options that select and configure a strategy. */
export type PartitionerOptions = Pick<PartitioningOptions, 'strategy'> & PartitionKeyOptions;

/**
 * Path segments that would reach an object's prototype machinery. Refused outright, so a
 * configured path can never read `Object.prototype` or a constructor, whatever the payload holds.
 */
const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The partition key of a payload: `partitionKeyExtractor` first; when it is absent or yields no
 * key, the payload field named by `partitionKey` (dot path such as `customer.id`).
 *
 * Only own properties are read, never the prototype chain, so a key cannot come from inherited or
 * polluted properties. Strings are kept (empty = no key); numbers, bigints and booleans become
 * strings; objects, arrays, functions, symbols, `null` and `undefined` are no key.
 */
export function extractKey(data: unknown, options: PartitionKeyOptions): string | undefined {
  if (options.partitionKeyExtractor !== undefined) {
    const key = scalarToKey(options.partitionKeyExtractor(data));
    if (key !== undefined) return key;
  }
  if (options.partitionKey === undefined) return undefined;
  return scalarToKey(readOwnPath(data, options.partitionKey));
}

function readOwnPath(data: unknown, path: string): unknown {
  let current: unknown = data;
  for (const segment of path.split('.')) {
    if (segment === '' || FORBIDDEN_SEGMENTS.has(segment)) return undefined;
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function scalarToKey(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value === '' ? undefined : value;
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(value);
    default:
      return undefined;
  }
}

/** An empty explicit key would send every such message to one partition by accident; treat it as absent. */
function nonEmpty(key: string | undefined): string | undefined {
  return key === undefined || key === '' ? undefined : key;
}

function assertPartitionCount(partitionCount: number): void {
  if (!Number.isSafeInteger(partitionCount) || partitionCount < 1) {
    throw new RangeError(`partitionCount must be an integer >= 1, got ${partitionCount}`);
  }
}

/**
 * Per-instance rotation over partitions. The counter is reduced on every step, so it never grows
 * without bound and stays correct when the partition count changes between calls (`dynamic`).
 */
class Rotation {
  private next = 0;

  take(partitionCount: number, preview = false): number {
    const partition = this.next % partitionCount;
    if (!preview) this.next = partition + 1;
    return partition;
  }
}

/**
 * Strategies `hash` and `dynamic`: the key (explicit key, else payload key, else idempotency key)
 * goes through jump consistent hash, so a key keeps its partition while the count is unchanged and
 * growing from n to n+1 partitions moves only ~1/(n+1) of the keys (what `dynamic` scaling needs).
 * Messages without any key are spread round robin.
 */
export class HashPartitioner extends Partitioner {
  private readonly rotation = new Rotation();

  constructor(private readonly keyOptions: PartitionKeyOptions = {}) {
    super();
  }

  choose(input: PartitionInput, partitionCount: number): PartitionChoice {
    assertPartitionCount(partitionCount);
    const key = nonEmpty(input.key) ?? extractKey(input.data, this.keyOptions) ?? nonEmpty(input.idempotencyKey);
    if (key === undefined) return { partition: this.rotation.take(partitionCount, input.preview) };
    return { partition: partitionForKey(key, partitionCount), key };
  }
}

/**
 * Strategy `roundRobin`: spreads messages evenly and ignores payload keys. Two exceptions still
 * hash: an explicit key (the caller asked for affinity) and an idempotency key (duplicates must land
 * in the partition whose dedupe state saw the first copy, or they would not be recognised).
 */
export class RoundRobinPartitioner extends Partitioner {
  private readonly rotation = new Rotation();

  choose(input: PartitionInput, partitionCount: number): PartitionChoice {
    assertPartitionCount(partitionCount);
    const key = nonEmpty(input.key) ?? nonEmpty(input.idempotencyKey);
    if (key === undefined) return { partition: this.rotation.take(partitionCount, input.preview) };
    return { partition: partitionForKey(key, partitionCount), key };
  }
}

/**
 * Strategy `keyBased`: every message must carry a key (explicit key, else payload key, else
 * idempotency key), so per-key ordering holds for all of them; a message without one is refused
 * rather than placed somewhere its ordering could not be guaranteed.
 */
export class KeyBasedPartitioner extends Partitioner {
  constructor(private readonly keyOptions: PartitionKeyOptions = {}) {
    super();
  }

  /** @throws PartitionKeyMissingError when no key is found. */
  choose(input: PartitionInput, partitionCount: number): PartitionChoice {
    assertPartitionCount(partitionCount);
    const key = nonEmpty(input.key) ?? extractKey(input.data, this.keyOptions) ?? nonEmpty(input.idempotencyKey);
    if (key === undefined) {
      throw new PartitionKeyMissingError(
        input.pattern,
        this.keyOptions.partitionKey,
        this.keyOptions.partitionKeyExtractor !== undefined,
      );
    }
    return { partition: partitionForKey(key, partitionCount), key };
  }
}

/**
 * The partitioner of a strategy, each call a new instance with its own round-robin state.
 * @throws InvalidOptionsError for an unknown strategy (possible only for unvalidated JS input).
 */
export function createPartitioner(options: PartitionerOptions): Partitioner {
  const keyOptions: PartitionKeyOptions = {
    partitionKey: options.partitionKey,
    partitionKeyExtractor: options.partitionKeyExtractor,
  };
  switch (options.strategy) {
    case 'hash':
    case 'dynamic':
      return new HashPartitioner(keyOptions);
    case 'roundRobin':
      return new RoundRobinPartitioner();
    case 'keyBased':
      return new KeyBasedPartitioner(keyOptions);
    default: {
      const strategy: never = options.strategy;
      throw new InvalidOptionsError([
        {
          path: 'partitioning.strategy',
          rule: 'isIn',
          message: `partitioning.strategy must be one of hash, roundRobin, keyBased, dynamic (got "${String(strategy)}")`,
        },
      ]);
    }
  }
}
