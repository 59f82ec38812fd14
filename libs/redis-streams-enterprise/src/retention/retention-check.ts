import { RETENTION_WARNING_RATIO, idTimeMs, type TrimmingMode } from './retention-policy.js';

export { RETENTION_WARNING_RATIO, idTimeMs };

/**
 * Says, in plain sentences, when a group is getting close to the retention limits (`streams.maxLen`,
 * `streams.retentionMs`): with `'hard'` trimming it is about to lose entries; with `'safe'` trimming it is about to
 * hold retention back (the stream keeps growing past the limit until the group catches up).
 */
export function retentionWarnings(input: {
  stream: string;
  group: string;
  /** Entries not yet delivered to the group. */
  lag: number | null;
  /** Time of the oldest entry the group has not finished (pending or not yet delivered). */
  oldestUnfinishedMs: number | null;
  nowMs: number;
  maxLen?: number;
  retentionMs?: number;
  /** @default 'hard' (the wording of the older, unconditional trimming) */
  trimming?: TrimmingMode;
}): string[] {
  const warnings: string[] = [];
  const { stream, group, lag, maxLen, retentionMs, oldestUnfinishedMs, nowMs, trimming = 'hard' } = input;
  const consequence =
    trimming === 'safe'
      ? 'retention is held back for it (the stream grows past the limit) until it catches up'
      : 'trimming may delete entries it has not processed';
  if (maxLen !== undefined && lag !== null && lag > maxLen * RETENTION_WARNING_RATIO) {
    warnings.push(
      `group ${group} is ${lag} entries behind on ${stream}, over ${RETENTION_WARNING_RATIO * 100}% of streams.maxLen ` +
        `(${maxLen}): ${consequence}`,
    );
  }
  if (retentionMs !== undefined && oldestUnfinishedMs !== null) {
    const age = nowMs - oldestUnfinishedMs;
    if (age > retentionMs * RETENTION_WARNING_RATIO) {
      warnings.push(
        `group ${group} has an unfinished entry ${Math.round(age / 1000)} s old on ${stream}, over ` +
          `${RETENTION_WARNING_RATIO * 100}% of streams.retentionMs (${retentionMs} ms): ${trimming === 'safe' ? consequence : 'trimming may delete it'}`,
      );
    }
  }
  return warnings;
}
