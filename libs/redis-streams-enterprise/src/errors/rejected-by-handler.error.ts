import { RedisStreamsError } from './redis-streams.error.js';

/** The handler called `ctx.deadLetter(reason)`: the message is dead-lettered (reason `rejected`) with this error. */
export class RejectedByHandlerError extends RedisStreamsError {
  constructor(readonly reason: string) {
    super('REJECTED_BY_HANDLER', reason);
  }
}

/** The handler called `ctx.nack()`: the attempt counts as failed and is retried (or dead-lettered after the last). */
export class NackedByHandlerError extends RedisStreamsError {
  constructor(readonly pattern: string) {
    super('NACKED_BY_HANDLER', `the handler of "${pattern.slice(0, 200)}" nacked the message`);
  }
}
