import { RedisStreamsError } from './redis-streams.error.js';

/** A handler did not settle within `consumer.handlerTimeoutMs`. */
export class HandlerTimeoutError extends RedisStreamsError {
  constructor(
    readonly pattern: string,
    readonly timeoutMs: number,
  ) {
    super('HANDLER_TIMEOUT', `Handler for "${pattern}" did not finish within ${timeoutMs} ms (consumer.handlerTimeoutMs)`);
  }
}
