/**
 * The retention step of one stream (the `retention` script) and the log of its outcome, shared by producers (every
 * few writes), consumers (a timer) and `getStatus()`. See retention-policy.ts for the arithmetic and the README
 * ("Retention") for the guarantees.
 */
import { Logger } from '@nestjs/common';
import { parseRetentionReply, type RetentionReply } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { logIds } from '../observability/log-format.js';
import { RETENTION_WARNING_RATIO, type RetentionLimits, type StreamRetentionStatus, retentionState } from './retention-policy.js';

/**
 * Most entries one XRANGE of the retention script reads (to find the maxLen boundary, or to count a group's unread
 * entries). Bounds the script's time and memory; a stream further over maxLen is trimmed over several runs.
 */
export const RETENTION_SCAN_MAX = 500;

/** Streams whose log state is remembered; past this the least recently reported is forgotten (and may be logged again). */
const MAX_TRACKED_STREAMS = 10_000;

/** The limits of `streams`, or undefined when neither maxLen nor retentionMs is set (nothing is trimmed). */
export function retentionLimits(streams: RetentionLimits): RetentionLimits | undefined {
  const { trimming, maxLen, retentionMs } = streams;
  if (maxLen === undefined && retentionMs === undefined) return undefined;
  return { trimming, maxLen, retentionMs };
}

/**
 * Writes per stream between two retention steps of a producer: a tenth of maxLen, between 10 and 100. Between two
 * steps a 'safe' stream grows by this many entries past maxLen, and 'hard' lag warnings come this late.
 */
export function retentionEveryWrites(limits: RetentionLimits): number {
  return limits.maxLen === undefined ? 100 : Math.max(10, Math.min(100, Math.floor(limits.maxLen / 10)));
}

/** Interval of a consumer's retention pass: 5 s with maxLen, else a tenth of retentionMs (1 s to 60 s). */
export function retentionPassMs(limits: RetentionLimits): number {
  const byTime = limits.retentionMs === undefined ? 60_000 : Math.max(1_000, Math.min(60_000, Math.floor(limits.retentionMs / 10)));
  return limits.maxLen === undefined ? byTime : Math.min(5_000, byTime);
}

/**
 * Runs the retention script on one stream. `trim`: trim under the configured mode (else only report); `countUnread`:
 * count each group's unread entries (needed for exact loss counts and 'hard' warnings; bounded by RETENTION_SCAN_MAX).
 * @returns null when the stream does not exist.
 */
export async function runRetention(
  command: ScriptedRedis,
  stream: string,
  limits: RetentionLimits,
  how: { readonly trim: boolean; readonly countUnread: boolean },
): Promise<RetentionReply | null> {
  const raw = await command.rseRetention(
    stream,
    limits.trimming,
    how.trim ? '1' : '0',
    how.countUnread ? '1' : '0',
    limits.maxLen === undefined ? '' : String(limits.maxLen),
    limits.retentionMs === undefined ? '' : String(limits.retentionMs),
    RETENTION_SCAN_MAX,
  );
  return parseRetentionReply(raw);
}

type GroupState = 'held' | 'near' | 'losing';

/** Logs retention states of streams when they change (a group starts or stops holding retention back, ...), never per pass. */
export class RetentionReporter {
  private readonly logger = new Logger(RetentionReporter.name);
  private readonly states = new Map<string, Map<string, GroupState>>();

  report(stream: string, reply: RetentionReply, status: StreamRetentionStatus, limits: RetentionLimits): void {
    const next = retentionState(reply, status, limits);
    const previous = this.states.get(stream);
    this.states.delete(stream);
    if (next.size > 0) this.states.set(stream, next);
    if (this.states.size > MAX_TRACKED_STREAMS) this.states.delete(this.states.keys().next().value as string);
    for (const group of new Set([...(previous?.keys() ?? []), ...next.keys()])) {
      const before = previous?.get(group);
      const now = next.get(group);
      if (before !== now) this.logChange(stream, group, now, status, limits);
    }
  }

  private logChange(stream: string, group: string, state: GroupState | undefined, status: StreamRetentionStatus, limits: RetentionLimits): void {
    const ids = logIds({ stream, group });
    const g = status.groups.find((x) => x.group === group);
    const limitText = [
      limits.maxLen === undefined ? '' : `streams.maxLen ${limits.maxLen}`,
      limits.retentionMs === undefined ? '' : `streams.retentionMs ${limits.retentionMs}`,
    ].filter(Boolean).join(', ');
    if (state === 'held') {
      this.logger.warn(
        `Retention held back: the group still needs entries the limits (${limitText}) would delete (oldest needed ` +
          `id=${g?.oldestNeededId}); they are kept, so the stream grows past its limits until the group catches up ` +
          `(length ${status.length}, ${status.entriesOverLimit} entries over maxLen, ${Math.round(status.ageOverLimitMs / 1000)} s over retentionMs) ${ids}`,
      );
    } else if (state === 'near') {
      this.logger.warn(
        `The group is close to losing entries to trimming (streams.trimming 'hard'): ${g?.unread ?? g?.lag} unread ` +
          `entries, oldest needed id=${g?.oldestNeededId}, over ${RETENTION_WARNING_RATIO * 100}% of ${limitText} ${ids}`,
      );
    } else if (state === 'losing') {
      this.logger.error(
        `Trimming is deleting entries the group has not processed (streams.trimming 'hard', ${limitText}; data loss): ` +
          `lost so far ${g?.lostUnread ?? 'an unknown number of'} unread and ${g?.lostPending ?? 0} pending entries ${ids}`,
      );
    } else {
      this.logger.log(`Retention back within its limits for the group (${limitText}) ${ids}`);
    }
  }
}
