import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A message emitted by `RedisStreamsTestHarness` (`nestjs-redis-streams-enterprise/testing`) was neither acknowledged
 * by the consumer group nor dead-lettered within `timeoutMs`. `state` says what was last seen in Redis.
 */
export class SettlementTimeoutError extends RedisStreamsError {
  constructor(
    readonly pattern: string,
    readonly entryId: string,
    readonly group: string,
    readonly timeoutMs: number,
    /** What Redis showed at the last look, e.g. `pending (delivered 2 times)` or `not delivered to the group yet`. */
    readonly state: string,
    /** The stream (or partition) holding the entry; undefined when it was not found in any stream of the pattern. */
    readonly stream: string | undefined,
  ) {
    super(
      'SETTLEMENT_TIMEOUT',
      `Entry ${entryId} of "${pattern}" was not handled or dead-lettered by group "${group}" within ${timeoutMs} ms ` +
        `(${state}${stream ? ` on ${stream}` : ''}); is a consumer of that group listening (app.listen()), with a handler ` +
        `for the pattern, and are retries short enough for the timeout (retry.backoff)?`,
    );
  }
}
