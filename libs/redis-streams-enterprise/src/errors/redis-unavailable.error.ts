import { RedisStreamsError } from './redis-streams.error.js';

/** Redis is unreachable and the call could not wait for it (offline queue full, disabled, or timed out). */
export class RedisUnavailableError extends RedisStreamsError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('REDIS_UNAVAILABLE', `Redis is unreachable: ${reason}; nothing was written`, options);
  }
}
