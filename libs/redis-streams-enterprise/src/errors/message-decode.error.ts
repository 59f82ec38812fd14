import { RedisStreamsError, type RedisStreamsErrorCode } from './redis-streams.error.js';

/** A stream entry could not be decoded into a message (bad fields, bad JSON, unknown wire version, too large). */
export class MessageDecodeError extends RedisStreamsError {
  constructor(reason: string, options?: { cause?: unknown }, code: RedisStreamsErrorCode = 'MESSAGE_DECODE_FAILED') {
    super(code, reason, options);
  }
}
