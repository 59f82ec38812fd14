import { Logger } from '@nestjs/common';
import type { ScriptedRedis } from '../connection/scripts.js';
import { parseClaimReply, type DeliveredEntry } from '../connection/redis-replies.js';
import { errorText, logIds } from '../observability/log-format.js';
import type { InFlight } from '../runtime/in-flight.js';

export interface ReclaimerSettings {
  readonly streams: readonly { stream: string; retrySchedule: string }[];
  readonly group: string;
  readonly consumer: string;
  readonly claimIdleMs: number;
  readonly intervalMs: number;
  /** Remove consumers idle this long that own nothing (0: never). */
  readonly deadConsumerIdleMs: number;
}

export interface ReclaimerHooks {
  readonly dispatch: (entry: DeliveredEntry) => Promise<void>;
  readonly onReclaimed: (count: number) => void;
  readonly onDeleted: (stream: string, ids: string[]) => void;
}

/**
 * Makes sure nothing stays pending forever. On a timer it
 * 1. extends the claims of entries this consumer is still handling (so a slow but alive handler keeps its work),
 * 2. takes entries whose scheduled retry is due (from any consumer, dead or alive),
 * 3. takes entries idle longer than claimIdleMs that wait for no retry: their consumer died or stalled.
 * Every take goes through a Lua script that checks and claims atomically, and only as many as there are free
 * in-flight slots. On start it takes back this consumer's own pending entries (a restart under a fixed name).
 */
export class PendingReclaimer {
  private readonly logger = new Logger('RedisStreamsReclaimer');
  private timer?: NodeJS.Timeout;
  private running = false;
  private pass?: Promise<void>;
  private readonly cursors = new Map<string, string>();
  private failing = false;
  private lastConsumerSweep = Date.now();
  /** Streams with a scheduled retry and when the next is due (from this process's retries and claimDue replies). */
  private readonly nextDue = new Map<string, number>();
  private lastFullSweep = 0;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly settings: ReclaimerSettings,
    private readonly inFlight: InFlight,
    private readonly hooks: ReclaimerHooks,
  ) {}

  async start(): Promise<void> {
    this.running = true;
    await this.reclaimOwn();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.pass;
  }

  /** One full pass now (also used by tests and by the timer). */
  async runOnce(): Promise<void> {
    if (this.pass) return this.pass;
    this.pass = this.doPass().finally(() => {
      this.pass = undefined;
    });
    return this.pass;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.runOnce().finally(() => this.schedule());
    }, this.settings.intervalMs);
    this.timer.unref();
  }

  /** A retry was scheduled on a stream: look at it again once it is due (instead of waiting for the full sweep). */
  noteRetry(stream: string, dueAtMs: number): void {
    const known = this.nextDue.get(stream);
    if (known === undefined || dueAtMs < known) this.nextDue.set(stream, dueAtMs);
  }

  /**
   * Every pass takes the retries that are due on streams known to have some; every claimIdleMs/4 (at most 30 s) a full
   * sweep looks at every stream for retries scheduled by other consumers (those that died included) and for entries
   * idle longer than claimIdleMs. So an idle consumer of many streams costs a few commands per second, not two
   * scripts per stream per pass.
   */
  private async doPass(): Promise<void> {
    try {
      await this.extendLiveClaims();
      const now = Date.now();
      const full = now - this.lastFullSweep >= Math.max(this.settings.intervalMs, Math.min(this.settings.claimIdleMs / 4, 30_000));
      if (full) this.lastFullSweep = now;
      for (const target of this.settings.streams) {
        if (!this.running) return;
        const due = this.nextDue.get(target.stream);
        if (full || (due !== undefined && due <= now)) await this.claim(target, 'due');
        if (full) await this.claim(target, 'idle');
      }
      await this.removeDeadConsumers();
      if (this.failing) {
        this.failing = false;
        this.logger.log(`Reclaiming resumed ${logIds({ group: this.settings.group })}`);
      }
    } catch (error) {
      if (!this.failing) {
        this.failing = true;
        this.logger.warn(`Reclaim pass failed, will retry: ${errorText(error)} ${logIds({ group: this.settings.group })}`);
      }
    }
  }

  /** At most once per deadConsumerIdleMs/2 (and at least every 10 minutes), drop consumers that went away. */
  private async removeDeadConsumers(): Promise<void> {
    const { deadConsumerIdleMs, group, consumer } = this.settings;
    if (deadConsumerIdleMs <= 0) return;
    const now = Date.now();
    if (now - this.lastConsumerSweep < Math.min(deadConsumerIdleMs / 2, 600_000)) return;
    this.lastConsumerSweep = now;
    for (const { stream } of this.settings.streams) {
      const removed = (await this.redis.rseRemoveIdleConsumers(stream, group, deadConsumerIdleMs, consumer)) as string[];
      if (removed.length > 0) {
        this.logger.log(`Removed ${removed.length} consumers idle for over ${deadConsumerIdleMs} ms that owned nothing ${logIds({ stream, group })}: ${removed.join(', ')}`);
      }
    }
  }

  /** Entries in handlers for a third of claimIdleMs get their idle time reset, long before anyone may claim them. */
  private async extendLiveClaims(): Promise<void> {
    const { group, consumer, claimIdleMs } = this.settings;
    const old = this.inFlight.olderThan(Math.floor(claimIdleMs / 3));
    for (const [stream, ids] of old) {
      for (let i = 0; i < ids.length; i += 500) {
        await this.redis.rseExtendClaims(stream, group, consumer, ...ids.slice(i, i + 500));
      }
    }
  }

  private async reclaimOwn(): Promise<void> {
    for (const target of this.settings.streams) {
      let cursor = '-';
      do {
        const free = this.inFlight.available;
        if (free === 0) await this.inFlight.whenAvailable();
        if (!this.running) return;
        const raw = await this.redis.rseReclaimIdle(
          target.stream, target.retrySchedule, this.settings.group, this.settings.consumer,
          0, Math.max(1, this.inFlight.available), cursor, this.settings.consumer,
        );
        const result = parseClaimReply(raw, target.stream);
        this.handOver(target.stream, result.entries, result.deletedIds);
        cursor = result.nextCursor === '0-0' ? '' : result.nextCursor;
      } while (cursor && this.running);
    }
  }

  private async claim(target: { stream: string; retrySchedule: string }, kind: 'due' | 'idle'): Promise<void> {
    const free = this.inFlight.available;
    if (free === 0) return;
    const { group, consumer, claimIdleMs } = this.settings;
    let raw: unknown;
    if (kind === 'due') {
      raw = await this.redis.rseClaimDue(target.stream, target.retrySchedule, group, consumer, free);
    } else {
      const cursor = this.cursors.get(target.stream) ?? '-';
      raw = await this.redis.rseReclaimIdle(target.stream, target.retrySchedule, group, consumer, claimIdleMs, free, cursor, '');
    }
    const result = parseClaimReply(raw, target.stream);
    if (kind === 'due' && result.nextDueMs !== undefined) {
      if (result.nextDueMs === null) this.nextDue.delete(target.stream);
      else this.nextDue.set(target.stream, result.nextDueMs);
    }
    if (kind === 'idle') this.cursors.set(target.stream, result.nextCursor === '0-0' ? '-' : result.nextCursor);
    if (kind === 'idle' && result.entries.length > 0) {
      this.hooks.onReclaimed(result.entries.length);
      this.logger.warn(
        `Reclaimed ${result.entries.length} entries idle for over ${claimIdleMs} ms from stopped consumers ` +
          logIds({ stream: target.stream, group }),
      );
    }
    this.handOver(target.stream, result.entries, result.deletedIds);
  }

  private handOver(stream: string, entries: DeliveredEntry[], deletedIds: string[]): void {
    if (deletedIds.length > 0) this.hooks.onDeleted(stream, deletedIds);
    for (const entry of entries) {
      // A claim can return an entry this process is already handling (its retry fell due while still running).
      if (this.inFlight.has(stream, entry.id)) continue;
      this.inFlight.run(stream, entry.id, () => this.hooks.dispatch(entry));
    }
  }
}
