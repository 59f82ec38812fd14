/**
 * The streams a server consumes, apart from the server (which coordinates connections, reading and shutdown):
 * which they are (one per pattern, or every partition stream of partitioned topics), their consumer groups, and
 * their retention (the time limit when XADD trims by length, and the sweep of claim-checked payloads).
 */
import type { Logger } from '@nestjs/common';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { classifyRedisError } from '../connection/redis-error-codes.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { errorText, logIds } from '../observability/log-format.js';
import { readablePartitions } from '../partitioning/partition-layout.js';
import type { PartitioningManager } from '../partitioning/partitioning.manager.js';
import { BLOB_SWEEP_INTERVAL_MS, BlobSweeper, claimCheckApplies } from './claim-check.js';

export interface ConsumedStream {
  readonly pattern: string;
  readonly stream: string;
  readonly retrySchedule: string;
}

export class ConsumedStreams {
  private streams: ConsumedStream[] = [];
  private trimTimer?: NodeJS.Timeout;
  private trimmingStopped = false;
  private blobSweeper?: BlobSweeper;

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly keys: StreamKeys,
    /** The server's logger: these lines are about the server's streams. */
    private readonly logger: Logger,
    /** The server's command connection, once it has one. */
    private readonly command: () => ScriptedRedis | undefined,
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
   * With both maxLen and retentionMs set, XADD trims by length and this timer applies the time limit. When
   * claim-checked payloads can arrive (claimCheckApplies), the same timer removes the blobs of trimmed entries.
   */
  startRetentionTrimming(): void {
    const { retentionMs, maxLen } = this.config.streams;
    const trimsByTime = retentionMs !== undefined && maxLen !== undefined;
    const sweeps = claimCheckApplies(this.config.streams);
    if (!trimsByTime && !sweeps) return;
    const everyMs = retentionMs === undefined ? BLOB_SWEEP_INTERVAL_MS : Math.max(1_000, Math.min(60_000, Math.floor(retentionMs / 10)));
    const trim = async () => {
      if (trimsByTime) {
        const minId = `${Date.now() - retentionMs}-0`;
        for (const { stream } of this.streams) {
          await this.command()?.xtrim(stream, 'MINID', '~', minId).catch((error: unknown) => {
            this.logger.debug?.(`Retention trim failed, next pass retries: ${errorText(error)} ${logIds({ stream })}`);
          });
        }
      }
      if (sweeps) await this.sweepBlobs();
    };
    const tick = () => {
      this.trimTimer = setTimeout(() => void trim().finally(() => this.trimmingStopped || tick()), everyMs);
      this.trimTimer.unref();
    };
    tick();
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
    clearTimeout(this.trimTimer);
  }
}
