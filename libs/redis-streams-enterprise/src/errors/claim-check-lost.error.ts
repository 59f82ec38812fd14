import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A large message's payload, uploaded beside its stream just before its entry, was gone when the entry was to be
 * written (evicted under memory pressure, or expired on a very slow pipeline). Nothing was written: emit again, and
 * check `maxmemory-policy` (it must be `noeviction`).
 */
export class ClaimCheckLostError extends RedisStreamsError {
  constructor(readonly stream: string) {
    super('CLAIM_CHECK_LOST', `The claim-checked payload of "${stream.slice(0, 200)}" was gone before its entry was written (evicted?); nothing was written`);
  }
}
