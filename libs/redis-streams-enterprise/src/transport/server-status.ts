import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { parseGroupsInfo } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { errorText } from '../observability/log-format.js';
import type { RedisStreamsStatus } from '../redis-streams.constants.js';
import type { EnabledFeatures } from './features.js';
import { idTimeMs, retentionWarnings } from './retention-check.js';

/** One consumed stream in `getStatus()`. */
export interface StreamStatus {
  readonly pattern: string;
  readonly stream: string;
  /** Entries delivered to this group and not yet acknowledged (all consumers). */
  readonly pending: number | null;
  /** Entries not yet delivered to this group; null when Redis cannot compute it. */
  readonly lag: number | null;
  readonly consumers: number | null;
  /** Retention warnings for this stream (see `warnings` of the server status). */
  readonly warnings: readonly string[];
}

/** Result of `RedisStreamsServer.getStatus()`. */
export interface RedisStreamsServerStatus {
  readonly healthy: boolean;
  readonly status: RedisStreamsStatus;
  readonly redis: { readonly command: string; readonly blocking: string };
  readonly group: string;
  readonly consumer: string;
  readonly streams: readonly StreamStatus[];
  readonly inFlight: number;
  readonly features: EnabledFeatures;
  /** Plain-sentence warnings, e.g. a group close to losing entries to trimming. Empty when all is well. */
  readonly warnings: readonly string[];
  readonly error?: string;
}

/** Pending, lag, consumers and retention warnings of this group on one stream (XINFO GROUPS, XPENDING). */
export async function streamStatus(command: ScriptedRedis, config: ResolvedRedisStreamsConfig, pattern: string, stream: string): Promise<StreamStatus> {
  const { group } = config.consumer;
  const { maxLen, retentionMs } = config.streams;
  try {
    const info = parseGroupsInfo(await command.xinfo('GROUPS', stream)).find((g) => g.name === group);
    let oldestUnfinishedMs: number | null = null;
    if (info && retentionMs !== undefined) {
      // Oldest pending entry, and the first entry not yet delivered: whichever is older.
      const summary = (await command.xpending(stream, group)) as unknown[];
      const firstUndelivered = await command.xrange(stream, `(${info.lastDeliveredId}`, '+', 'COUNT', 1);
      const candidates = [summary[1], firstUndelivered[0]?.[0]].filter((id): id is string => typeof id === 'string');
      oldestUnfinishedMs = candidates.length ? Math.min(...candidates.map(idTimeMs)) : null;
    }
    const warnings = info
      ? retentionWarnings({ stream, group, lag: info.lag, oldestUnfinishedMs, nowMs: Date.now(), maxLen, retentionMs })
      : [];
    return { pattern, stream, pending: info?.pending ?? null, lag: info?.lag ?? null, consumers: info?.consumers ?? null, warnings };
  } catch (error) {
    if (/no such key/i.test(errorText(error))) return { pattern, stream, pending: null, lag: null, consumers: null, warnings: [] };
    throw error;
  }
}
