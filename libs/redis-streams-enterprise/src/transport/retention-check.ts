/** Share of the retention limit at which a lagging group is reported. */
export const RETENTION_WARNING_RATIO = 0.8;

/** Milliseconds part of a stream entry id (`<ms>-<seq>`). */
export const idTimeMs = (id: string): number => Number(id.split('-')[0]);

/**
 * Trimming (`streams.maxLen`, `streams.retentionMs`) deletes entries whether or not every group processed them.
 * This says, in plain sentences, when a group is getting close to losing entries that way.
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
}): string[] {
  const warnings: string[] = [];
  const { stream, group, lag, maxLen, retentionMs, oldestUnfinishedMs, nowMs } = input;
  if (maxLen !== undefined && lag !== null && lag > maxLen * RETENTION_WARNING_RATIO) {
    warnings.push(
      `group ${group} is ${lag} entries behind on ${stream}, over ${RETENTION_WARNING_RATIO * 100}% of streams.maxLen ` +
        `(${maxLen}): trimming may delete entries it has not processed`,
    );
  }
  if (retentionMs !== undefined && oldestUnfinishedMs !== null) {
    const age = nowMs - oldestUnfinishedMs;
    if (age > retentionMs * RETENTION_WARNING_RATIO) {
      warnings.push(
        `group ${group} has an unfinished entry ${Math.round(age / 1000)} s old on ${stream}, over ` +
          `${RETENTION_WARNING_RATIO * 100}% of streams.retentionMs (${retentionMs} ms): trimming may delete it`,
      );
    }
  }
  return warnings;
}
