/**
 * Pure retention arithmetic over what the retention script reports (connection/scripts.ts, `retention`): which groups
 * the limits cut into, how far a safe retention is held back, and how many entries a group lost to hard trimming.
 *
 * Loss counting (Redis 7.0+). Redis counts, per stream, every entry ever added (`entries-added`) and, per group, the
 * entries delivered to it (`entries-read`, incremented once per delivered entry, so entries trimmed before the group
 * read them are never counted). With P = how many entries were added up to the group's last-delivered id, the group
 * lost P - entries-read entries without reading them. P is known without counting in two cases: the group is before
 * the stream's first entry (every removed entry comes before its position or is its own loss: P is replaced by the
 * removed count, entries-added - length), or it is at the last entry (P = entries-added). In between, P is
 * entries-added minus the entries after the last-delivered id, which the script counts (bounded).
 * The XDEL caveat: the removed count includes entries deleted by XDEL anywhere in the stream, and Redis re-estimates
 * (or forgets) entries-read after an XDEL, so counts are no longer exact once `max-deleted-entry-id` is not 0-0.
 */
import type { RetentionGroup, RetentionReply } from '../connection/redis-replies.js';

/** How `streams.maxLen` / `streams.retentionMs` treat entries a group has not processed (see StreamsOptions.trimming). */
export type TrimmingMode = 'safe' | 'hard';

/** The configured limits (StreamsOptions). */
export interface RetentionLimits {
  readonly trimming: TrimmingMode;
  readonly maxLen?: number;
  readonly retentionMs?: number;
}

/** Share of a limit at which a lagging group is reported. */
export const RETENTION_WARNING_RATIO = 0.8;

/** One consumer group of a stream in `getStatus()` `streams[].retention.groups`. */
export interface GroupRetentionStatus {
  readonly group: string;
  readonly pending: number;
  /** Entries after its last-delivered id that are still in the stream; null when not counted (see the docs: Guarantees › retention). */
  readonly unread: number | null;
  /** Redis' lag (7.0+): entries-added minus entries-read, so it includes lostUnread; null on 6.2. */
  readonly lag: number | null;
  /** The oldest entry the group still needs (oldest pending, or the id right after its last-delivered id). */
  readonly oldestNeededId: string;
  /** Entries deleted by trimming before the group read them (Redis 7.0+); null when Redis cannot tell. */
  readonly lostUnread: number | null;
  /** Pending entries whose data is gone (the reclaimer finds them, reports them and counts them in lostToTrimming). */
  readonly lostPending: number;
}

/** `getStatus()` `streams[].retention`: what the limits do to one stream. */
export interface StreamRetentionStatus {
  readonly trimming: TrimmingMode;
  readonly length: number;
  /**
   * Groups that still need entries the limits would delete, oldest need first. `'safe'`: they hold retention back
   * (the stream grows past the limits); `'hard'`: those entries are being deleted.
   */
  readonly behindLimit: readonly string[];
  /** `'safe'`, held back: entries kept beyond `maxLen` (0 otherwise). */
  readonly entriesOverLimit: number;
  /** `'safe'`, held back: how much older than `retentionMs` the oldest kept entry is (0 otherwise). */
  readonly ageOverLimitMs: number;
  /** False once an XDEL removed an entry of the stream: loss counts may then be off (see the docs: Guarantees › retention). */
  readonly lossCountExact: boolean;
  readonly groups: readonly GroupRetentionStatus[];
}

/** Milliseconds part of a stream entry id (`<ms>-<seq>`). */
export const idTimeMs = (id: string): number => Number(id.split('-')[0]);

/** Orders two stream entry ids (`<ms>-<seq>`, decimal without leading zeros) without losing 64-bit precision. */
export function compareIds(a: string, b: string): number {
  const [am = '', as = ''] = a.split('-');
  const [bm = '', bs = ''] = b.split('-');
  if (am.length !== bm.length) return am.length < bm.length ? -1 : 1;
  if (am !== bm) return am < bm ? -1 : 1;
  if (as.length !== bs.length) return as.length < bs.length ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

type StreamCounters = Pick<RetentionReply, 'length' | 'entriesAdded' | 'firstId' | 'lastId'>;
type GroupCounters = Pick<RetentionGroup, 'lastDeliveredId' | 'entriesRead' | 'unreadInStream'>;

/** How many entries were added up to the group's last-delivered id, or the removed count when that is more. */
function positionOrRemoved(stream: StreamCounters, group: GroupCounters, added: number): number | null {
  const removed = added - stream.length;
  if (stream.firstId === null || stream.lastId === null || compareIds(group.lastDeliveredId, stream.firstId) < 0) return removed;
  if (compareIds(group.lastDeliveredId, stream.lastId) >= 0) return added;
  return group.unreadInStream === null ? null : added - group.unreadInStream;
}

/** Entries the group lost to trimming without reading them; null when Redis' counters cannot tell (see header). */
export function lostUnread(stream: StreamCounters, group: GroupCounters): number | null {
  if (stream.entriesAdded === null || group.entriesRead === null) return null;
  const position = positionOrRemoved(stream, group, stream.entriesAdded);
  return position === null ? null : Math.max(0, position - group.entriesRead);
}

/** Entries after the group's last-delivered id still in the stream (its true lag); null when unknown. */
export function unreadInStream(stream: StreamCounters, group: GroupCounters): number | null {
  if (stream.firstId === null || stream.lastId === null) return 0;
  if (compareIds(group.lastDeliveredId, stream.firstId) < 0) return stream.length;
  if (compareIds(group.lastDeliveredId, stream.lastId) >= 0) return 0;
  return group.unreadInStream;
}

/** Status of the limits on one stream, from one retention script reply. */
export function assessRetention(reply: RetentionReply, limits: RetentionLimits): StreamRetentionStatus {
  const { policyBoundaryId: policy, safeBoundaryId: safe, cutsIntoGroups } = reply;
  // When the length boundary is not known (the script stopped its scan at the safe boundary), the group(s) at the
  // safe boundary are the ones known to hold it back.
  const behind = !cutsIntoGroups
    ? []
    : reply.groups.filter((g) => (policy !== null && compareIds(g.neededId, policy) < 0) || (safe !== null && compareIds(g.neededId, safe) === 0));
  behind.sort((a, b) => compareIds(a.neededId, b.neededId));
  const heldBack = limits.trimming === 'safe' && behind.length > 0;
  const { maxLen, retentionMs } = limits;
  return {
    trimming: limits.trimming,
    length: reply.length,
    behindLimit: behind.map((g) => g.name),
    entriesOverLimit: heldBack && maxLen !== undefined ? Math.max(0, reply.length - maxLen) : 0,
    ageOverLimitMs:
      heldBack && retentionMs !== undefined && reply.firstId !== null ? Math.max(0, reply.nowMs - idTimeMs(reply.firstId) - retentionMs) : 0,
    lossCountExact: reply.maxDeletedId === null || reply.maxDeletedId === '0-0',
    groups: reply.groups.map((g) => ({
      group: g.name,
      pending: g.pending,
      unread: unreadInStream(reply, g),
      lag: g.lag,
      oldestNeededId: g.neededId,
      lostUnread: lostUnread(reply, g),
      lostPending: g.pendingGone,
    })),
  };
}

/**
 * State of one stream for the log, so that a warning is written when it changes, not on every pass.
 * `'safe'`: the groups that hold retention back. `'hard'`: per group, `'losing'` while an entry it needs is gone
 * already (below the stream's first entry), else `'near'` while its unread entries pass 80 % of maxLen or its oldest
 * needed entry passes 80 % of retentionMs. (Not "below the limit": the stream's length swings around maxLen with
 * approximate trimming, and the log would swing with it.)
 */
export function retentionState(reply: RetentionReply, status: StreamRetentionStatus, limits: RetentionLimits): Map<string, 'held' | 'near' | 'losing'> {
  const states = new Map<string, 'held' | 'near' | 'losing'>();
  if (limits.trimming === 'safe') {
    for (const group of status.behindLimit) states.set(group, 'held');
    return states;
  }
  for (const g of status.groups) {
    const lost = reply.firstId === null ? g.pending > 0 : compareIds(g.oldestNeededId, reply.firstId) < 0;
    if (lost) {
      states.set(g.group, 'losing');
      continue;
    }
    const needsStoredEntry = reply.lastId !== null && compareIds(g.oldestNeededId, reply.lastId) <= 0;
    // Redis' lag counts lost entries too: without a count of the unread ones, take it less the known loss.
    const unread = g.unread ?? (g.lag === null ? null : g.lag - (g.lostUnread ?? 0));
    const nearLength = limits.maxLen !== undefined && unread !== null && unread > limits.maxLen * RETENTION_WARNING_RATIO;
    const nearAge =
      limits.retentionMs !== undefined && needsStoredEntry && reply.nowMs - idTimeMs(g.oldestNeededId) > limits.retentionMs * RETENTION_WARNING_RATIO;
    if (nearLength || nearAge) states.set(g.group, 'near');
  }
  return states;
}
