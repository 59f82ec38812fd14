import { RedisStreamsError } from './redis-streams.error.js';

/** Redis could not be reached at start-up (the server or client does not start). */
export class ConnectionFailedError extends RedisStreamsError {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    const reason = typeof cause === 'object' && cause !== null && 'message' in cause ? String(cause.message) : String(cause);
    super('CONNECTION_FAILED', `Cannot connect to Redis at ${url} (${reason}); check connection.url and that Redis is running`, { cause });
  }
}
