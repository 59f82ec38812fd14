import { RedisStreamsError } from './redis-streams.error.js';

/**
 * An emit or send was refused before anything was written, because of what it carries: headers (at most 64, names
 * `[A-Za-z0-9._-]{1,128}`, string values of at most 4,096 characters) or keys (idempotency key, partition key,
 * dependency: non-empty strings of at most 512 characters). `field` names what was wrong.
 */
export class InvalidMessageError extends RedisStreamsError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super('INVALID_MESSAGE', `Message not sent: ${reason}`);
  }
}
