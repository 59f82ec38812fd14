import { RedisStreamsError } from './redis-streams.error.js';

/**
 * An API was called where it cannot work: before `listen()`/`connect()`, on a context the transport did not make
 * (a replay, a request), or with arguments it never accepts (a command a transaction cannot run). A programming
 * error: the message says what to call instead.
 */
export class InvalidUsageError extends RedisStreamsError {
  constructor(message: string) {
    super('INVALID_USAGE', message);
  }
}
