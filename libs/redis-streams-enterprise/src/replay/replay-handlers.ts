import type { StreamEntry } from '../connection/redis-replies.js';

/** What handing one stored entry to its handler again came to: handled, the handler failed, no event handler, or invalid. */
export type ReplayOutcome = 'handled' | 'failed' | 'skipped' | { invalid: string };

/**
 * The handlers a replay with `target: 'handlers'` reaches. The module binds it to the app's `RedisStreamsServer`
 * (which implements it), so replay never depends on the Nest transport itself. Abstract class = DI token.
 */
export abstract class ReplayHandlers {
  /** Hands one stored entry of `pattern` to its event handler as a replay (no ack, no retry, `ctx.isReplay()`). */
  abstract replayEntry(pattern: string, entry: StreamEntry): Promise<ReplayOutcome>;
}
