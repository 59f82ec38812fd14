import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A message's causal dependencies were not handled within `ordering.timeoutMs`; with
 * `ordering.causalTimeoutPolicy: 'deadLetter'` it is dead-lettered (reason `causal-timeout`) with this error.
 */
export class CausalTimeoutError extends RedisStreamsError {
  constructor(
    readonly dependsOn: readonly string[],
    readonly timeoutMs: number,
  ) {
    super(
      'CAUSAL_TIMEOUT',
      `dependencies ${dependsOn.slice(0, 20).join(', ')} were not handled within ordering.timeoutMs (${timeoutMs} ms); ` +
        'redrive the message once they are',
    );
  }
}
