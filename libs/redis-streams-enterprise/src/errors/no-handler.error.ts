import { RedisStreamsError } from './redis-streams.error.js';

/** An entry names a pattern this server has no handler for. */
export class NoHandlerError extends RedisStreamsError {
  constructor(readonly pattern: string) {
    super('NO_HANDLER', `No @EventPattern or @MessagePattern handler for pattern "${pattern.slice(0, 200)}"`);
  }
}
