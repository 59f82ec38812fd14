import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import picomatch from 'picomatch';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { doorbellFor } from '../cluster/doorbell.js';
import { ReplayRangeError } from '../errors/replay-range.error.js';
import { errorText, logIds } from '../observability/log-format.js';
import { AuditTrail, type AuditContext } from '../observability/audit-trail.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import { compressPayload, decodeMessage } from '../wire/envelope.js';
import { ReplayHandlers } from './replay-handlers.js';
import { concatenate, mergeById, pageThrough, type SourcedEntry } from './replay-cursor.js';
import { streamsOfTopic } from '../partitioning/topic-streams.js';
import { compareIds, replayRange } from './replay-range.js';
import type { ReplayedMessage, ReplayRequest, ReplayResult, ReplayStop, ReplayTarget } from './replay-request.js';
import { PayloadCodec } from '../payload-codec/payload-codec.js';
import { EncryptionKeyProvider } from '../payload-codec/key-ring.js';

interface Tally {
  /** Entries selected so far (what maxMessages limits). */
  selected: number;
  scanned: number;
  replayed: number;
  skipped: number;
  failed: number;
  firstId?: string;
  lastId?: string;
  invalid: { stream: string; entryId: string; reason: string }[];
}

/** Invalid entries listed in a validation report, at most. */
const MAX_INVALID_LISTED = 1_000;

/**
 * Replays stored messages: by time or id range, filtered by a pattern glob or a predicate, to this app's handlers,
 * into another stream, or by repositioning a consumer group (Kafka's `--reset-offsets --to-datetime`).
 *
 * Safe on a live system: replay reads with XRANGE (never XREADGROUP), so it neither claims nor acknowledges live
 * entries, and live consumers go on undisturbed. Bounded: it reads in `replay.batchSize` pages, stops at
 * `maxMessages` / `replay.maxReplayMessages` and `replay.replayTimeout`, and can be cancelled with an AbortSignal;
 * the result says why it stopped.
 *
 * ```ts
 * const result = await replayManager.replayMessages({
 *   streamName: 'user.events', startTime: Date.now() - 86_400_000, filterPattern: 'user.*.created', maxMessages: 1000,
 * });
 * ```
 */
@Injectable()
export class ReplayManager implements OnApplicationShutdown {
  private readonly logger = new Logger(ReplayManager.name);
  readonly config: ResolvedRedisStreamsConfig;
  private readonly keys: StreamKeys;
  private readonly connection: LazyConnection;
  /** Opens encrypted or compressed payloads for `filter` (copies keep them as they are). */
  private readonly codec: PayloadCodec;
  /** Records replays and group resets (compliance.audit). */
  private readonly audit: AuditTrail;

  constructor(
    @Inject(REDIS_STREAMS_OPTIONS) config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig,
    @Optional() private readonly handlers?: ReplayHandlers,
    @Optional() keyProvider?: EncryptionKeyProvider,
  ) {
    this.config = resolveConfig(config);
    this.codec = new PayloadCodec(this.config, keyProvider);
    this.keys = new StreamKeys(this.config.streams.keyPrefix);
    this.connection = new LazyConnection(this.config.connection, 'replay', 'ReplayManager');
    this.audit = new AuditTrail(this.config, () => this.redis());
  }

  /**
   * Replays the selected messages to the target.
   * @throws ReplayRangeError for an invalid range or request, or when `replay.enabled` is false;
   *   ConnectionFailedError when Redis is unreachable.
   * Recorded in the audit trail (failures too; `by` names the actor); a dry run changes nothing and is not recorded.
   */
  async replayMessages(request: ReplayRequest, by?: AuditContext): Promise<ReplayResult> {
    if (request.dryRun) return this.replayNow(request);
    const target = request.target ?? 'handlers';
    const { streamName, signal: _signal, onProgress: _onProgress, target: _target, ...params } = request;
    const spec = {
      action: target === 'handlers' ? 'replay.handlers' : 'stream' in target ? 'replay.stream' : 'replay.reset-group',
      target: { patterns: typeof streamName === 'string' ? [streamName] : [...streamName], ...(target === 'handlers' ? {} : target) },
      params,
    } as const;
    return this.audit.around(spec, by, () => this.replayNow(request), (r) => ({ scanned: r.scanned, replayed: r.replayed, skipped: r.skipped, failed: r.failed }));
  }

  private async replayNow(request: ReplayRequest): Promise<ReplayResult> {
    if (!this.config.replay.enabled) throw new ReplayRangeError('replay is disabled (set replay.enabled: true)');
    const started = Date.now();
    const patterns = typeof request.streamName === 'string' ? [request.streamName] : [...request.streamName];
    if (patterns.length === 0) throw new ReplayRangeError('streamName names no stream');
    const target: ReplayTarget = request.target ?? 'handlers';
    const dryRun = request.dryRun ?? false;
    if (target === 'handlers' && !dryRun && !this.handlers) {
      throw new ReplayRangeError("target 'handlers' needs a RedisStreamsServer (inject ReplayManager in the app that consumes)");
    }
    const { start, end } = replayRange(request);
    const redis = await this.redis();
    const { replay } = this.config;
    const maxMessages = Math.min(request.maxMessages ?? Number.POSITIVE_INFINITY, replay.maxReplayMessages);
    const deadline = started + replay.replayTimeout;
    const tally: Tally = { selected: 0, scanned: 0, replayed: 0, skipped: 0, failed: 0, invalid: [] };

    if (typeof target === 'object' && 'stream' in target && patterns.includes(target.stream)) {
      throw new ReplayRangeError(`the target stream "${target.stream}" is also a source: the copy would read its own copies`);
    }
    if (typeof target === 'object' && 'resetGroup' in target) {
      return this.resetGroup(redis, patterns, target.resetGroup, start, end, request, dryRun, maxMessages, started);
    }

    const matchPattern = request.filterPattern ? picomatch(request.filterPattern) : undefined;
    // A partitioned topic is read from all its partitions, merged by entry id (time order).
    const patternOf = new Map<string, string>();
    for (const p of patterns) for (const stream of await streamsOfTopic(redis, this.keys, p)) patternOf.set(stream, p);
    const sources = [...patternOf.keys()].map((stream) => pageThrough(redis, stream, start, end, replay.batchSize));
    const entries = sources.length > 1 && (request.preserveOrdering ?? replay.preserveOrdering) ? mergeById(sources) : concatenate(sources);
    const copyBatch: { source: SourcedEntry }[] = [];
    let stoppedBy: ReplayStop = 'end';

    for await (const entry of entries) {
      stoppedBy = this.stopReason(request, deadline, tally, maxMessages) ?? stoppedBy;
      if (stoppedBy !== 'end') break;
      if (entry.fields['rse.control'] !== undefined) continue; // partition layout marks, not messages
      tally.scanned++;
      const streamPattern = patternOf.get(entry.stream) ?? '';
      if (!(await this.select(entry, streamPattern, matchPattern, request.filter, tally))) continue;
      tally.selected++;
      tally.firstId ??= entry.id;
      tally.lastId = entry.id;
      if (dryRun) tally.replayed++;
      else if (target === 'handlers') await this.toHandlers(streamPattern, entry, tally);
      else {
        copyBatch.push({ source: entry });
        if (copyBatch.length >= replay.batchSize) await this.copy(redis, target.stream, copyBatch.splice(0), tally);
      }
      if (tally.scanned % replay.batchSize === 0) request.onProgress?.(this.progress(tally));
    }
    if (copyBatch.length > 0 && typeof target === 'object' && 'stream' in target) await this.copy(redis, target.stream, copyBatch.splice(0), tally);
    request.onProgress?.(this.progress(tally));
    const result = this.result(tally, stoppedBy, started, dryRun);
    this.logger.log(
      `Replay ${dryRun ? '(dry run) ' : ''}of ${patterns.join(',')} ${start}..${end}: ${tally.replayed} replayed, ` +
        `${tally.skipped} skipped, ${tally.failed} failed, stopped by ${stoppedBy}`,
    );
    return result;
  }

  /** Why the replay must stop before the next entry (cancelled, out of time, enough selected), or undefined. */
  private stopReason(request: ReplayRequest, deadline: number, tally: Tally, maxMessages: number): ReplayStop | undefined {
    if (request.signal?.aborted) return 'aborted';
    if (Date.now() > deadline) return 'timeout';
    if (tally.selected >= maxMessages) return 'maxMessages';
    return undefined;
  }

  /** Hands one selected entry to its handler again and counts the outcome. */
  private async toHandlers(streamPattern: string, entry: SourcedEntry, tally: Tally): Promise<void> {
    const outcome = await (this.handlers as ReplayHandlers).replayEntry(streamPattern, entry);
    if (outcome === 'handled') tally.replayed++;
    else if (outcome === 'failed') tally.failed++;
    else if (outcome === 'skipped') tally.skipped++;
    else this.noteInvalid(tally, entry, outcome.invalid);
  }

  /** Closes the connection (called by Nest on shutdown). Idempotent. */
  async close(): Promise<void> {
    await this.connection.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** Decides whether an entry is replayed; counts skipped and invalid ones. */
  private async select(
    entry: SourcedEntry,
    streamPattern: string,
    matchPattern: ((pattern: string) => boolean) | undefined,
    filter: ((message: ReplayedMessage) => boolean) | undefined,
    tally: Tally,
  ): Promise<boolean> {
    const pattern = entry.fields.pattern ?? streamPattern;
    if (matchPattern && !matchPattern(pattern)) {
      tally.skipped++;
      return false;
    }
    if (!filter) return true;
    try {
      const fields = await this.codec.decode(entry.fields, streamPattern, entry.id);
      const decoded = decodeMessage(entry.id, fields, streamPattern, this.config.streams.maxPayloadBytes);
      const message: ReplayedMessage = { stream: entry.stream, entryId: entry.id, pattern: decoded.pattern, messageId: decoded.messageId, data: decoded.data, headers: decoded.headers };
      if (filter(message)) return true;
    } catch (error) {
      this.noteInvalid(tally, entry, errorText(error));
      return false;
    }
    tally.skipped++;
    return false;
  }

  private noteInvalid(tally: Tally, entry: SourcedEntry, reason: string): void {
    tally.failed++;
    if (tally.invalid.length < MAX_INVALID_LISTED) tally.invalid.push({ stream: entry.stream, entryId: entry.id, reason });
  }

  /**
   * Copies a page of entries into the target pattern's stream, once each (see scripts.ts replayCopy). Entries copied
   * by an earlier replay count as skipped, not replayed.
   */
  private async copy(redis: ScriptedRedis, targetPattern: string, batch: { source: SourcedEntry }[], tally: Tally): Promise<void> {
    const args: (string | number)[] = [batch.length];
    const compress = this.config.replay.compression;
    for (const { source } of batch) {
      const copy = { ...source.fields };
      if (compress && copy.data !== undefined && copy.enc === undefined) {
        copy.data = compressPayload(copy.data);
        copy.enc = 'gzip';
      }
      const fields = Object.entries(copy).flat();
      fields.push('rse.replay.from', `${source.stream}/${source.id}`);
      args.push(`${source.stream}/${source.id}`, fields.length, ...fields);
    }
    const added = Number(await redis.rseReplayCopy(this.keys.stream(targetPattern), this.keys.replayDedupe(targetPattern), ...args));
    tally.replayed += added;
    if (added > 0) await doorbellFor(redis, this.keys, this.config.streams.doorbell)?.ringAndDrain(this.keys.stream(targetPattern));
    tally.skipped += batch.length - added;
  }

  /**
   * Positions a consumer group just before the first entry of the range (creating the group when needed), so its
   * consumers re-consume everything from there on. Pending entries of the group are left as they are.
   */
  private async resetGroup(
    redis: ScriptedRedis,
    patterns: string[],
    group: string,
    start: string,
    end: string,
    request: ReplayRequest,
    dryRun: boolean,
    maxMessages: number,
    started: number,
  ): Promise<ReplayResult> {
    const tally: Tally = { selected: 0, scanned: 0, replayed: 0, skipped: 0, failed: 0, invalid: [] };
    const streams = (await Promise.all(patterns.map((p) => streamsOfTopic(redis, this.keys, p)))).flat();
    for (const stream of streams) {
      // Nothing can come before the first possible id (and Redis refuses the exclusive range `(0-0`).
      const fromTheStart = start === '-' || /^0(-0)?$/.test(start);
      const [before] = fromTheStart ? [] : await redis.xrevrange(stream, `(${start.includes('-') ? start : `${start}-0`}`, '-', 'COUNT', 1);
      const position = before ? String((before as unknown[])[0]) : '0';
      for await (const entry of pageThrough(redis, stream, start, end, this.config.replay.batchSize)) {
        if (tally.scanned >= maxMessages) break;
        tally.scanned++;
        tally.replayed++;
        tally.firstId ??= entry.id;
        if (!tally.lastId || compareIds(entry.id, tally.lastId) > 0) tally.lastId = entry.id;
      }
      if (dryRun) continue;
      try {
        await redis.xgroup('SETID', stream, group, position);
      } catch (error) {
        if (!/NOGROUP/.test(errorText(error))) throw error;
        await redis.xgroup('CREATE', stream, group, position, 'MKSTREAM');
      }
      this.logger.log(`Reset group ${logIds({ stream, group })} to ${position}`);
    }
    request.onProgress?.(this.progress(tally));
    return this.result(tally, 'end', started, dryRun);
  }

  private progress(tally: Tally) {
    return { scanned: tally.scanned, replayed: tally.replayed, skipped: tally.skipped, failed: tally.failed, lastId: tally.lastId };
  }

  private result(tally: Tally, stoppedBy: ReplayStop, started: number, dryRun: boolean): ReplayResult {
    return {
      ...this.progress(tally),
      messagesReplayed: tally.replayed,
      firstId: tally.firstId,
      stoppedBy,
      durationMs: Date.now() - started,
      dryRun,
      validation: this.config.replay.validateReplay
        ? {
            complete: stoppedBy === 'end',
            entriesInRange: tally.scanned,
            replayed: tally.replayed,
            skipped: tally.skipped,
            failed: tally.failed,
            invalid: tally.invalid,
          }
        : undefined,
    };
  }

  private redis(): Promise<ScriptedRedis> {
    return this.connection.get();
  }
}
