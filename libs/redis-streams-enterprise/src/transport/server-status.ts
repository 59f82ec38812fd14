import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { parseGroupsInfo } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { errorText } from '../observability/log-format.js';
import { redact } from '../connection/redis-error-codes.js';
import type { ServerConnections } from '../consumer/server-connections.js';
import { RedisStreamsStatus } from '../redis-streams.constants.js';
import { enabledFeatures, type EnabledFeatures } from './features.js';
import { assessRetention, type StreamRetentionStatus } from '../retention/retention-policy.js';
import { retentionLimits, runRetention } from '../retention/stream-retention.js';
import { idTimeMs, retentionWarnings } from '../retention/retention-check.js';

/** One consumed stream in `getStatus()`. */
export interface StreamStatus {
  readonly pattern: string;
  readonly stream: string;
  /** Entries delivered to this group and not yet acknowledged (all consumers). */
  readonly pending: number | null;
  /** Entries not yet delivered to this group; null when Redis cannot compute it. */
  readonly lag: number | null;
  readonly consumers: number | null;
  /**
   * What `streams.maxLen`/`retentionMs` do to this stream, for every group on it: whether a group holds retention
   * back ('safe') or is losing entries ('hard'), and per group the entries lost to trimming. Null without limits.
   */
  readonly retention: StreamRetentionStatus | null;
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

/** Pending, lag, consumers and retention of this group on one stream (XINFO GROUPS, XPENDING, the retention script). */
export async function streamStatus(command: ScriptedRedis, config: ResolvedRedisStreamsConfig, pattern: string, stream: string): Promise<StreamStatus> {
  const { group } = config.consumer;
  const { maxLen, retentionMs, trimming } = config.streams;
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
    const retention = await retentionStatus(command, config, stream);
    const warnings = info
      ? retentionWarnings({ stream, group, lag: info.lag, oldestUnfinishedMs, nowMs: Date.now(), maxLen, retentionMs, trimming })
      : [];
    if (retention) warnings.push(...retentionStatusWarnings(stream, retention));
    return { pattern, stream, pending: info?.pending ?? null, lag: info?.lag ?? null, consumers: info?.consumers ?? null, retention, warnings };
  } catch (error) {
    if (/no such key/i.test(errorText(error))) return { pattern, stream, pending: null, lag: null, consumers: null, retention: null, warnings: [] };
    throw error;
  }
}

/** The retention script in report mode (nothing trimmed), with unread entries counted for exact loss counts. */
async function retentionStatus(command: ScriptedRedis, config: ResolvedRedisStreamsConfig, stream: string): Promise<StreamRetentionStatus | null> {
  const limits = retentionLimits(config.streams);
  if (!limits) return null;
  const reply = await runRetention(command, stream, limits, { trim: false, countUnread: true });
  return reply ? assessRetention(reply, limits) : null;
}

/** 'safe': who holds retention back and what it costs; 'hard' (or trimming by others): which group lost entries. */
function retentionStatusWarnings(stream: string, retention: StreamRetentionStatus): string[] {
  const warnings: string[] = [];
  if (retention.trimming === 'safe' && retention.behindLimit.length > 0) {
    warnings.push(
      `retention of ${stream} is held back by group ${retention.behindLimit.join(', ')}: ${retention.length} entries kept ` +
        `(${retention.entriesOverLimit} over streams.maxLen, oldest ${Math.round(retention.ageOverLimitMs / 1000)} s over ` +
        `streams.retentionMs) until it catches up`,
    );
  }
  for (const g of retention.groups) {
    if (!g.lostUnread && !g.lostPending) continue;
    warnings.push(
      `group ${g.group} lost entries of ${stream} to trimming before processing them: ${g.lostUnread ?? 0} never read, ` +
        `${g.lostPending} pending`,
    );
  }
  return warnings;
}

/** What `getStatus()` looks at, from the server. */
export interface ServerStatusInput {
  readonly config: ResolvedRedisStreamsConfig;
  readonly state: RedisStreamsStatus;
  readonly connections: ServerConnections;
  readonly inFlight: number;
  /** A reading loop (group consumer or partitioned consumer) runs. */
  readonly reading: boolean;
  readonly streams: readonly { readonly pattern: string; readonly stream: string }[];
}

/**
 * The server's status: healthy while it is connected, every connection is ready and a reading loop runs, and each
 * consumed stream's pending/lag/retention as Redis reports them; Redis errors make it unhealthy with the reason.
 */
export async function serverStatus(input: ServerStatusInput): Promise<RedisStreamsServerStatus> {
  const { config, state, connections } = input;
  const { group, consumerName } = config.consumer;
  const { command, blocking } = connections;
  const reading = connections.reading();
  const base = {
    status: state,
    redis: {
      command: command?.status ?? 'none',
      blocking: reading.find((c) => c.status !== 'ready')?.status ?? blocking?.status ?? 'none',
    },
    group,
    consumer: consumerName,
    inFlight: input.inFlight,
    features: enabledFeatures(config),
  };
  const live =
    state === RedisStreamsStatus.Connected &&
    command?.status === 'ready' &&
    blocking !== undefined &&
    reading.every((c) => c.status === 'ready') &&
    input.reading;
  try {
    const streams = await Promise.all(input.streams.map((s) => streamStatus(connections.commandOrThrow(), config, s.pattern, s.stream)));
    return { ...base, healthy: live, streams, warnings: streams.flatMap((s) => s.warnings) };
  } catch (error) {
    return { ...base, healthy: false, streams: [], warnings: [], error: redact(errorText(error)) };
  }
}
