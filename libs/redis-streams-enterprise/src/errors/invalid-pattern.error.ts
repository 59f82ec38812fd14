import { RedisStreamsError } from './redis-streams.error.js';

/** A pattern cannot be used as a message route (empty or too long). */
export class InvalidPatternError extends RedisStreamsError {
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super('INVALID_PATTERN', `Pattern "${pattern.slice(0, 80)}" cannot be used: ${reason}`);
  }
}
