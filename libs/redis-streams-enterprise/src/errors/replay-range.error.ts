import { RedisStreamsError } from './redis-streams.error.js';

/** A replay request's range or options cannot be used. */
export class ReplayRangeError extends RedisStreamsError {
  constructor(reason: string) {
    super('REPLAY_INVALID', `Invalid replay request: ${reason}`);
  }
}
