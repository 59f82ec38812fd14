/**
 * The streams a server consumes, apart from the server (which coordinates connections, reading and shutdown):
 * which they are (one per pattern, or every partition stream of partitioned topics), their consumer groups, and
 * their retention pass (the retention step of retention/ on every stream, and the sweep of claim-checked payloads).
 */
import type { Logger } from '@nestjs/common';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { classifyRedisError } from '../connection/redis-error-codes.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { errorText, logIds } from '../observability/log-format.js';
import type { TransportMetrics } from '../observability/metrics.js';
import { BackgroundLoop } from '../runtime/background-loop.js';
import { assessRetention, type RetentionLimits } from '../retention/retention-policy.js';
import { RetentionReporter, retentionLimits, retentionPassMs, runRetention } from '../retention/stream-retention.js';
import { readablePartitions } from '../partitioning/partition-layout.js';
import type { PartitioningManager } from '../partitioning/partitioning.manager.js';
import { BLOB_SWEEP_INTERVAL_MS, BlobSweeper, claimCheckApplies } from '../claim-check/claim-check.js';

export interface ConsumedStream {
  readonly pattern: string;
  readonly stream: string;
  readonly retrySchedule: string;
}

export class ConsumedStreams {
  private streams: ConsumedStream[] = [];
  private trimLoop?: BackgroundLoop;
  private trimmingStopped = false;
  private blobSweeper?: BlobSweeper;
  private readonly retentionReporter = new RetentionReporter();
  /** This group's unread entries lost to trimming, per stream (the largest count seen: Redis may forget after XDEL). */
  private readonly lostUnread = new Map<string, number>();

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly keys: StreamKeys,
    /** The server's logger: these lines are about the server's streams. */
    private readonly logger: Logger,
    /** The server's command connection, once it has one. */
    private readonly command: () => ScriptedRedis | undefined,
    /** The server's counters (lostUnreadToTrimming is set by the retention pass). */
    private readonly metrics: TransportMetrics,
  ) {}

  /** The streams with their retry schedules (the array is replaced, never changed, when the list changes). */
  get list(): readonly ConsumedStream[] {
    return this.streams;
  }

  /** One stream per pattern (topics that are not partitioned). */
  usePatterns(patterns: readonly string[]): void {
    const { group } = this.config.consumer;
    this.streams = patterns.map((pattern) => ({ pattern, stream: this.keys.stream(pattern), retrySchedule: this.keys.retrySchedule(pattern, group) }));
  }

  /** Status and trimming cover every partition stream of the partitioned topics. */
  async usePartitionStreams(patterns: readonly string[], partitioning: PartitioningManager): Promise<void> {
    const streams: ConsumedStream[] = [];
    for (const pattern of patterns) {
      const layout = await partitioning.layoutOf(pattern);
      for (let p = 0; p < readablePartitions(layout); p++) {
        const stream = this.keys.partition(pattern, p);
        streams.push({ pattern, stream, retrySchedule: this.keys.retryScheduleOf(stream, this.config.consumer.group) });
      }
    }
    this.streams = streams;
  }

  /** Creates the group on every stream (and the stream itself); an existing group is left as it is. */
  async ensureGroups(): Promise<void> {
    const command = this.command();
    if (!command) return;
    const { group, groupStartId } = this.config.consumer;
    for (const { stream } of this.streams) {
      try {
        await command.xgroup('CREATE', stream, group, groupStartId, 'MKSTREAM');
        this.logger.log(`Created consumer group ${logIds({ stream, group })} start=${groupStartId}`);
      } catch (error) {
        if (classifyRedisError(error) !== 'busygroup') throw error;
      }
    }
  }

  /**
   * With streams.maxLen or retentionMs set, the retention pass runs every retentionPassMs on every consumed stream:
   * it trims ('safe': what no group needs any more, which covers streams producers stopped writing to; 'hard': to the
   * limits), logs retention state changes and counts this group's lost entries. When claim-checked payloads can
   * arrive (claimCheckApplies), the same timer removes the blobs of trimmed entries.
   */
  startRetentionTrimming(): void {
    const limits = retentionLimits(this.config.streams);
    const sweeps = claimCheckApplies(this.config.streams);
    if (!limits && !sweeps) return;
    const everyMs = limits ? retentionPassMs(limits) : BLOB_SWEEP_INTERVAL_MS;
    const pass = async () => {
      if (limits) await this.retentionPass(limits);
      if (sweeps) await this.sweepBlobs();
    };
    this.trimLoop = new BackgroundLoop(pass, {
      intervalMs: everyMs,
      onFailing: (error) => this.logger.warn(`Retention pass failed, the next pass retries: ${errorText(error)}`),
    });
    this.trimLoop.start('afterInterval');
  }

  /** One retention step per stream; failures are logged at debug and retried by the next pass, never thrown. */
  async retentionPass(limits: RetentionLimits): Promise<void> {
    const { group } = this.config.consumer;
    for (const { stream } of this.streams) {
      const command = this.command();
      if (!command || this.trimmingStopped) return;
      try {
        const reply = await runRetention(command, stream, limits, { trim: true, countUnread: limits.trimming === 'hard' });
        if (!reply) continue;
        const status = assessRetention(reply, limits);
        this.retentionReporter.report(stream, reply, status, limits);
        const lost = status.groups.find((g) => g.group === group)?.lostUnread;
        if (lost !== null && lost !== undefined) this.lostUnread.set(stream, Math.max(lost, this.lostUnread.get(stream) ?? 0));
      } catch (error) {
        this.logger.debug?.(`Retention step failed, next pass retries: ${errorText(error)} ${logIds({ stream })}`);
      }
    }
    let total = 0;
    for (const count of this.lostUnread.values()) total += count;
    this.metrics.lostUnreadToTrimming = total;
  }

  /**
   * Removes the claim-checked payloads whose entries were trimmed from these streams and whose dead letters are
   * gone too. Failures are logged and retried by the next pass, never thrown.
   * @returns how many blobs were deleted (0 before the server connected).
   */
  async sweepBlobs(): Promise<number> {
    const command = this.command();
    if (!command) return 0;
    this.blobSweeper ??= new BlobSweeper(command, this.keys);
    let deleted = 0;
    for (const { stream } of this.streams) deleted += await this.blobSweeper.sweep(stream);
    return deleted;
  }

  /** Clears the timer; a pass that is running finishes and schedules no other. */
  stopRetentionTrimming(): void {
    this.trimmingStopped = true;
    void this.trimLoop?.stop();
  }
}
