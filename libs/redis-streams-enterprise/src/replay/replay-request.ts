import type { MessageHeaders } from '../wire/envelope.js';

/** Where replayed messages go. */
export type ReplayTarget =
  /** Re-dispatch to this app's `@EventPattern` handlers (the server must be listening); `ctx.isReplay()` is true. */
  | 'handlers'
  /** Copy into another pattern's stream (migration, test environments); a repeated copy does not duplicate. */
  | { readonly stream: string }
  /** Position a consumer group (new or existing) so that it re-consumes from the start of the range. */
  | { readonly resetGroup: string };

/** A message as replay sees it (for `filter` and progress). */
export interface ReplayedMessage {
  readonly stream: string;
  readonly entryId: string;
  readonly pattern: string;
  readonly messageId: string;
  readonly data: unknown;
  readonly headers: MessageHeaders;
}

/** Progress of a running replay. */
export interface ReplayProgress {
  /** Entries read from the range so far. */
  readonly scanned: number;
  readonly replayed: number;
  /** Entries read but not selected (filterPattern, filter), not replayable (requests, no handler), or already copied into the target stream by an earlier replay. */
  readonly skipped: number;
  readonly failed: number;
  readonly lastId?: string;
}

/** What to replay (the seed's fields, plus offsets, a predicate, a target, limits and cancellation). */
export interface ReplayRequest {
  /** Pattern whose stream is replayed (the seed's `streamName`), or several patterns merged by entry id. */
  readonly streamName: string | readonly string[];
  /** Entries written at or after this time (Redis server time of the entry id). */
  readonly startTime?: number | Date;
  /** Entries written at or before this time. */
  readonly endTime?: number | Date;
  /** First entry id (inclusive); wins over startTime. */
  readonly startId?: string;
  /** Last entry id (inclusive); wins over endTime. */
  readonly endId?: string;
  /** Glob over message patterns, e.g. `user.*.created` (`*` matches any characters except `/`). */
  readonly filterPattern?: string;
  /** Predicate on the decoded message. */
  readonly filter?: (message: ReplayedMessage) => boolean;
  /** At most this many messages replayed (also capped by `replay.maxReplayMessages`). */
  readonly maxMessages?: number;
  /** With several streams: merge them in entry-id (time) order. @default replay.preserveOrdering */
  readonly preserveOrdering?: boolean;
  /** @default 'handlers' */
  readonly target?: ReplayTarget;
  /** Only count and report what would be replayed. */
  readonly dryRun?: boolean;
  /** Cancels the replay; the result says `stoppedBy: 'aborted'`. */
  readonly signal?: AbortSignal;
  /** Called after every page with the totals so far. */
  readonly onProgress?: (progress: ReplayProgress) => void;
}

/** Why a replay ended. */
export type ReplayStop = 'end' | 'maxMessages' | 'timeout' | 'aborted';

/** Result of `ReplayManager.replayMessages` (the seed's `messagesReplayed`, and more). */
export interface ReplayResult extends ReplayProgress {
  readonly messagesReplayed: number;
  readonly firstId?: string;
  readonly stoppedBy: ReplayStop;
  readonly durationMs: number;
  readonly dryRun: boolean;
  /** With `replay.validateReplay`: how the range compares with what was replayed. */
  readonly validation?: ReplayValidation;
}

export interface ReplayValidation {
  /** True when the whole range was read (the replay was not stopped early). */
  readonly complete: boolean;
  readonly entriesInRange: number;
  readonly replayed: number;
  readonly skipped: number;
  readonly failed: number;
  /** Entries that could not be decoded (bad JSON, unknown wire version, ...), with the reason. */
  readonly invalid: readonly { readonly stream: string; readonly entryId: string; readonly reason: string }[];
}
