import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A request named a reply address that is not a reply stream of this deployment. The consumer does not run the
 * handler and writes nothing there; the request is dead-lettered (reason `invalid-reply-to`). The address is kept,
 * cut to 200 characters, for the operator.
 */
export class InvalidReplyAddressError extends RedisStreamsError {
  readonly replyTo: string;

  constructor(replyTo: string, expected: string) {
    const shown = JSON.stringify(replyTo.slice(0, 200));
    super('INVALID_REPLY_ADDRESS', `Request refused: replyTo ${shown} is not a reply stream of this deployment (expected ${expected})`);
    this.replyTo = replyTo.slice(0, 200);
  }
}
