import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { firstEntryId, parseEntry, parseTimeMs } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { assessRetention, idTimeMs, type RetentionLimits, type TrimmingMode } from '../retention/retention-policy.js';
import { runRetention } from '../retention/stream-retention.js';
import type { CatalogStream } from './stream-catalog.js';

/** What `ComplianceManager.retentionReport` is asked for. */
export interface RetentionReportRequest {
  /** Dead letters dead-lettered more than this many days ago are counted apart. @default 30 */
  readonly deadLetterOlderThanDays?: number;
  /** Only these topics (patterns or globs). @default every topic of the prefix */
  readonly topics?: readonly string[];
}

/** One consumer group of a stream in the retention report. */
export interface GroupRetentionReport {
  readonly group: string;
  readonly pending: number;
  /** Entries not yet delivered to the group (Redis 7+), null when Redis cannot tell. */
  readonly lag: number | null;
  /** Entries trimmed away before the group read them (Redis 7+); null when Redis cannot tell (see lossCountExact). */
  readonly lostToTrimming: number | null;
  /** Pending entries of the group whose data is gone. */
  readonly pendingWithoutData: number;
}

/** What is kept of one stream (a topic's stream or one of its partitions) and of its dead letters. */
export interface StreamRetentionReport {
  readonly stream: string;
  /** The topic's pattern when the stream key (or its first entry) names it. */
  readonly pattern: string | null;
  readonly partition: number | null;
  readonly length: number;
  readonly oldestId: string | null;
  /** ISO time of the oldest entry (from its id: the Redis server's clock when it was added). */
  readonly oldestAt: string | null;
  readonly newestId: string | null;
  /** Entries ever added (Redis 7+), null on 6.2. */
  readonly entriesAdded: number | null;
  /** Entries no longer in the stream: trimmed or deleted (entriesAdded - length); null on 6.2. */
  readonly entriesRemoved: number | null;
  /** False once XDEL removed an entry (an erasure, a redrive's source): lost counts are estimates then. */
  readonly lossCountExact: boolean;
  readonly groups: readonly GroupRetentionReport[];
  readonly deadLetters: {
    readonly stream: string;
    readonly length: number;
    readonly oldestAt: string | null;
    /** Dead letters older than `deadLetterOlderThanDays`. */
    readonly olderThanLimit: number;
  };
}

/** Per topic: the policy, what is kept and for how long, what was lost to trimming, old dead letters. */
export interface RetentionReport {
  /** ISO time of the report (the Redis server's clock). */
  readonly generatedAt: string;
  /** The policy of the configuration the report was made with (the apps' own configuration is not visible in Redis). */
  readonly policy: {
    readonly maxLen: number | null;
    readonly retentionMs: number | null;
    readonly trimming: TrimmingMode;
    readonly deadLetterMaxLen: number;
  };
  readonly deadLetterOlderThanDays: number;
  readonly streams: readonly StreamRetentionReport[];
}

const PAGE = 1_000;
const DAY_MS = 86_400_000;
const iso = (id: string | null) => (id === null ? null : new Date(idTimeMs(id)).toISOString());

/** Counts the entries of a stream before `cutoffMs` (id order is time order), reading ids in pages. */
async function countBefore(redis: ScriptedRedis, key: string, cutoffMs: number): Promise<number> {
  let count = 0;
  let start = '-';
  for (;;) {
    const page = await redis.xrange(key, start, String(Math.max(0, cutoffMs - 1)), 'COUNT', PAGE);
    count += page.length;
    if (page.length < PAGE) return count;
    start = `(${String(page.at(-1)![0])}`;
  }
}

/** The report of one live stream (the retention script in report-only mode, plus its dead-letter stream). */
export async function streamReport(
  redis: ScriptedRedis,
  keys: StreamKeys,
  config: ResolvedRedisStreamsConfig,
  stream: CatalogStream,
  olderThanDays: number,
): Promise<StreamRetentionReport> {
  const { trimming, maxLen, retentionMs } = config.streams;
  const limits: RetentionLimits = { trimming, maxLen, retentionMs };
  const reply = await runRetention(redis, stream.key, limits, { trim: false, countUnread: true });
  const status = reply ? assessRetention(reply, limits) : null;
  const dlq = keys.deadLetterOf(stream.key);
  const nowMs = reply?.nowMs ?? parseTimeMs(await redis.time());
  const [dlqLength, dlqFirst] = await Promise.all([redis.xlen(dlq), redis.xrange(dlq, '-', '+', 'COUNT', 1)]);
  const dlqOldest = firstEntryId(dlqFirst) ?? null;
  let pattern = stream.pattern ?? null;
  if (pattern === null && reply?.firstId) {
    const [first] = await redis.xrange(stream.key, reply.firstId, reply.firstId);
    pattern = (first ? parseEntry(first)?.fields.pattern : undefined)?.slice(0, 1_024) ?? null;
  }
  return {
    stream: stream.key,
    pattern,
    partition: stream.partition ?? null,
    length: reply?.length ?? 0,
    oldestId: reply?.firstId ?? null,
    oldestAt: iso(reply?.firstId ?? null),
    newestId: reply?.lastId ?? null,
    entriesAdded: reply?.entriesAdded ?? null,
    entriesRemoved: reply?.entriesAdded == null ? null : reply.entriesAdded - reply.length,
    lossCountExact: status?.lossCountExact ?? true,
    groups: (status?.groups ?? []).map((g) => ({
      group: g.group,
      pending: g.pending,
      lag: g.lag,
      lostToTrimming: g.lostUnread,
      pendingWithoutData: g.lostPending,
    })),
    deadLetters: {
      stream: dlq,
      length: dlqLength,
      oldestAt: iso(dlqOldest),
      olderThanLimit: dlqLength === 0 ? 0 : await countBefore(redis, dlq, nowMs - olderThanDays * DAY_MS),
    },
  };
}

/** The report's head: the server's time and the configured policy. */
export async function reportHead(redis: ScriptedRedis, config: ResolvedRedisStreamsConfig, olderThanDays: number): Promise<Omit<RetentionReport, 'streams'>> {
  const { trimming, maxLen, retentionMs } = config.streams;
  return {
    generatedAt: new Date(parseTimeMs(await redis.time())).toISOString(),
    policy: { maxLen: maxLen ?? null, retentionMs: retentionMs ?? null, trimming, deadLetterMaxLen: config.deadLetter.maxLen },
    deadLetterOlderThanDays: olderThanDays,
  };
}
