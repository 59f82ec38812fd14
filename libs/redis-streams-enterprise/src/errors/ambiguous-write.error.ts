import { RedisStreamsError } from './redis-streams.error.js';

/**
 * The connection failed after a write was sent to Redis and before its reply arrived (Redis died, the socket was
 * reset, or the command timed out): the entry may or may not have been stored, and it may even be handled. Unlike
 * `RedisUnavailableError` (certainly nothing written), retrying may produce a duplicate: retry with the same
 * `idempotencyKey` (exactly-once) or rely on handlers that are idempotent by `messageId`.
 */
export class AmbiguousWriteError extends RedisStreamsError {
  constructor(
    /** The stream the entry was written to. */
    readonly stream: string,
    /** The message id the entry carries (`ctx.getMessageId()` on the consumer side), to recognise a duplicate. */
    readonly messageId: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'WRITE_AMBIGUOUS',
      `Message ${messageId} was sent to stream "${stream}" but the connection failed before Redis answered ` +
        `(${reason}): it may or may not have been stored. Retry it with an idempotency key ` +
        '(RedisStreamsRecordBuilder.setIdempotencyKey) so that a stored first attempt is not written twice, or make ' +
        'handlers idempotent by message id',
      { cause },
    );
  }
}
