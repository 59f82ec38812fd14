import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A handler's transaction writes keys outside the Redis Cluster hash slot of the message it consumes, so they
 * cannot be committed atomically with its acknowledgement. Nothing was written; the message is retried.
 */
export class TransactionCrossSlotError extends RedisStreamsError {
  constructor(
    readonly stream: string,
    readonly keys: readonly string[],
  ) {
    super(
      'TRANSACTION_CROSS_SLOT',
      `Transaction of a message from "${stream}" writes keys in other Redis Cluster slots (${keys.slice(0, 5).join(', ')}); ` +
        `give them the hash tag of the consumed stream (the part in braces), or emit them outside the transaction`,
    );
  }
}
