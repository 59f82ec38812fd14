import { RedisStreamsError } from './redis-streams.error.js';

/**
 * The `keyBased` partitioning strategy found no partition key for a message; nothing was written.
 * `partitionKeyField` is the configured payload field (`partitioning.partitionKey`), if any, and
 * `hasExtractor` tells whether a `partitioning.partitionKeyExtractor` was tried.
 */
export class PartitionKeyMissingError extends RedisStreamsError {
  constructor(
    readonly pattern: string,
    readonly partitionKeyField: string | undefined,
    readonly hasExtractor: boolean,
  ) {
    const tried: string[] = [];
    if (hasExtractor) tried.push('partitioning.partitionKeyExtractor returned no key');
    if (partitionKeyField !== undefined) {
      tried.push(`payload field "${partitionKeyField}" is missing or not a string, number or boolean`);
    }
    if (tried.length === 0) tried.push('neither partitioning.partitionKey nor partitionKeyExtractor is configured');
    super(
      'PARTITION_KEY_MISSING',
      `Message for "${pattern.slice(0, 200)}" has no partition key (${tried.join('; ')}); the keyBased strategy requires one: ` +
        'pass a key in the emit options, set partitioning.partitionKey to a payload field, or give a partitionKeyExtractor',
    );
  }
}
