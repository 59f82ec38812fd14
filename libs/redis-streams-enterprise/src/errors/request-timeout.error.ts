import { RedisStreamsError } from './redis-streams.error.js';

/** A `send()` got no reply within `client.requestTimeoutMs`. */
export class RequestTimeoutError extends RedisStreamsError {
  constructor(
    readonly pattern: string,
    readonly timeoutMs: number,
  ) {
    super(
      'REQUEST_TIMEOUT',
      `No reply to request "${pattern}" within ${timeoutMs} ms; is a @MessagePattern handler for it running? (client.requestTimeoutMs)`,
    );
  }
}
