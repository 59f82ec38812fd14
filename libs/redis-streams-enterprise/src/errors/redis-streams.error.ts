/** Stable machine-readable codes carried by every error this library throws. */
export type RedisStreamsErrorCode =
  | 'INVALID_OPTIONS'
  | 'CONNECTION_CLOSED'
  | 'CONNECTION_FAILED'
  | 'REQUEST_TIMEOUT'
  | 'PAYLOAD_TOO_LARGE'
  | 'INVALID_PATTERN'
  | 'TOO_MANY_PENDING_REQUESTS'
  | 'MESSAGE_DECODE_FAILED'
  | 'NO_HANDLER'
  | 'REMOTE_HANDLER_FAILED'
  | 'HANDLER_TIMEOUT'
  | 'REDIS_UNAVAILABLE'
  | 'WRITE_AMBIGUOUS'
  | 'REPLICATION_TIMEOUT'
  | 'REPLAY_INVALID'
  | 'SCHEMA_INVALID'
  | 'SCHEMA_REGISTRATION_REFUSED'
  | 'PARTITION_KEY_MISSING'
  | 'STALE_PARTITION_LAYOUT'
  | 'TRANSACTION_CROSS_SLOT'
  | 'SETTLEMENT_TIMEOUT'
  | 'TEST_REDIS_START_FAILED'
  | 'SCHEMA_REGISTRY_MISSING'
  | 'SCHEMA_UPCAST_FAILED'
  | 'CAUSAL_TIMEOUT'
  | 'REJECTED_BY_HANDLER'
  | 'NACKED_BY_HANDLER'
  | 'INVALID_MESSAGE'
  | 'INVALID_USAGE'
  | 'INVALID_PARTITION_LAYOUT'
  | 'PARTITION_SCALE_REFUSED'
  | 'CLAIM_CHECK_LOST'
  | 'INVALID_REPLY_ADDRESS'
  | 'CONSUMER_NAME_IN_USE'
  | 'OPTIONAL_DEPENDENCY_MISSING'
  | 'DECRYPT_FAILED'
  | 'CODEC_UNAVAILABLE'
  | 'MIRROR_REFUSED';

/**
 * Base class of every error thrown by nestjs-redis-streams-enterprise.
 * `code` is stable across versions; `message` is for humans.
 */
export class RedisStreamsError extends Error {
  readonly code: RedisStreamsErrorCode;

  constructor(code: RedisStreamsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
