import { RedisStreamsError } from './redis-streams.error.js';

/**
 * Error returned to a `send()` caller when the remote `@MessagePattern` handler failed.
 * Carries the remote error's name, code and message; never its stack.
 */
export class RemoteHandlerError extends RedisStreamsError {
  constructor(
    message: string,
    readonly remoteName: string,
    readonly remoteCode?: string,
    readonly status?: string | number,
  ) {
    super('REMOTE_HANDLER_FAILED', message);
  }
}
