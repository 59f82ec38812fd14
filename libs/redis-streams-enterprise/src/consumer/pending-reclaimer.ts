import { Logger } from '@nestjs/common';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { ClaimResult, DeliveredEntry } from '../connection/redis-replies.js';
import { asStreamCommands, type StreamCommands } from '../connection/stream-commands.js';
import { errorText, logFields, logIds } from '../observability/log-format.js';
import { BackgroundLoop } from '../runtime/background-loop.js';
import { FailureStreak, loopReport, type LoopHealthReport } from '../observability/loop-health.js';
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
  readonly onReclaimed: (count: number, stream: string) => void;
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
  private readonly commands: StreamCommands;
  /** A pass every intervalMs (after the previous one ended); a failed pass is logged once and retried by the next. */
  private readonly loop: BackgroundLoop;
  private running = false;
  private readonly cursors = new Map<string, string>();
  private lastConsumerSweep: number;
  /** Streams with a scheduled retry and when the next is due (from this process's retries and claimDue replies). */
  private readonly nextDue = new Map<string, number>();
  private lastFullSweep = 0;
  /**
   * Failed passes in a row, for health: a pass that found nothing to do (no sweep, no retry due) neither fails nor
   * ends a run of failures, so sweeps that fail every time are seen between the idle passes.
   */
  private readonly streak = new FailureStreak();

  /** @param commands the command port, or the server's command connection (wrapped in the port). */
  constructor(
    commands: StreamCommands | ScriptedRedis,
    private readonly settings: ReclaimerSettings,
    private readonly inFlight: InFlight,
    private readonly hooks: ReclaimerHooks,
    private readonly now: () => number = Date.now,
  ) {
    this.commands = asStreamCommands(commands);
    this.lastConsumerSweep = now();
    const group = settings.group;
    this.loop = new BackgroundLoop(() => this.doPass(), {
      intervalMs: settings.intervalMs,
      onFailing: (error) => this.logger.warn(`Reclaim pass failed, will retry: ${errorText(error)} ${logIds({ group })}`, logFields({ group, reason: 'reclaim-failed', error })),
      onRecovered: () => this.logger.log(`Reclaiming resumed ${logIds({ group })}`),
    });
  }

  async start(): Promise<void> {
    this.running = true;
    await this.reclaimOwn();
    if (this.running) this.loop.start('afterInterval');
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop.stop();
  }

  /**
   * Its health: failing passes in a row (NOPERM, NOSCRIPT, OOM: entries then stay pending), or a pass that has run
   * longer than max(60 s, 2 x claimIdleMs) (a Redis that stopped answering).
   */
  health(): LoopHealthReport {
    const loop = this.loop.health();
    const streak = this.streak.health();
    return loopReport('reclaiming', { ...loop, failures: streak.failures, failingSinceMs: streak.failingSinceMs, lastError: streak.lastError }, Math.max(60_000, 2 * this.settings.claimIdleMs));
  }

  /** One full pass now (also used by tests and by the timer); joins a pass in progress. Never rejects. */
  runOnce(): Promise<void> {
    return this.loop.runNow();
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
      if (await this.sweep()) this.streak.succeeded();
    } catch (error) {
      this.streak.failed(error);
      throw error;
    }
  }

  /** One pass; true when it did more than look at the clock (a sweep, a due retry, claims extended). */
  private async sweep(): Promise<boolean> {
    const extended = await this.extendLiveClaims();
    const now = this.now();
    const full = now - this.lastFullSweep >= Math.max(this.settings.intervalMs, Math.min(this.settings.claimIdleMs / 4, 30_000));
    if (full) this.lastFullSweep = now;
    let worked = extended || full;
    for (const target of this.settings.streams) {
      if (!this.running) return worked;
      const due = this.nextDue.get(target.stream);
      if (full || (due !== undefined && due <= now)) {
        worked = true;
        await this.claim(target, 'due');
      }
      if (full) await this.claim(target, 'idle');
    }
    await this.removeDeadConsumers();
    return worked;
  }

  /** At most once per deadConsumerIdleMs/2 (and at least every 10 minutes), drop consumers that went away. */
  private async removeDeadConsumers(): Promise<void> {
    const { deadConsumerIdleMs, group, consumer } = this.settings;
    if (deadConsumerIdleMs <= 0) return;
    const now = this.now();
    if (now - this.lastConsumerSweep < Math.min(deadConsumerIdleMs / 2, 600_000)) return;
    this.lastConsumerSweep = now;
    for (const { stream } of this.settings.streams) {
      const removed = await this.commands.removeIdleConsumers(stream, group, deadConsumerIdleMs, consumer);
      if (removed.length > 0) {
        this.logger.log(`Removed ${removed.length} consumers idle for over ${deadConsumerIdleMs} ms that owned nothing ${logIds({ stream, group })}: ${removed.join(', ')}`);
      }
    }
  }

  /** Entries in handlers for a third of claimIdleMs get their idle time reset, long before anyone may claim them. */
  private async extendLiveClaims(): Promise<boolean> {
    const { group, consumer, claimIdleMs } = this.settings;
    const old = this.inFlight.olderThan(Math.floor(claimIdleMs / 3));
    for (const [stream, ids] of old) {
      for (let i = 0; i < ids.length; i += 500) {
        await this.commands.extendClaims(stream, group, consumer, ids.slice(i, i + 500));
      }
    }
    return old.size > 0;
  }

  private async reclaimOwn(): Promise<void> {
    for (const target of this.settings.streams) {
      let cursor = '-';
      do {
        const free = this.inFlight.available;
        if (free === 0) await this.inFlight.whenAvailable();
        if (!this.running) return;
        const result = await this.commands.reclaimIdle(
          target.stream, target.retrySchedule, this.settings.group, this.settings.consumer,
          0, Math.max(1, this.inFlight.available), cursor, this.settings.consumer,
        );
        this.handOver(target.stream, result.entries, result.deletedIds);
        cursor = result.nextCursor === '0-0' ? '' : result.nextCursor;
      } while (cursor && this.running);
    }
  }

  private async claim(target: { stream: string; retrySchedule: string }, kind: 'due' | 'idle'): Promise<void> {
    const free = this.inFlight.available;
    if (free === 0) return;
    const { group, consumer, claimIdleMs } = this.settings;
    let result: ClaimResult;
    if (kind === 'due') {
      result = await this.commands.claimDue(target.stream, target.retrySchedule, group, consumer, free);
    } else {
      const cursor = this.cursors.get(target.stream) ?? '-';
      result = await this.commands.reclaimIdle(target.stream, target.retrySchedule, group, consumer, claimIdleMs, free, cursor, '');
    }
    if (kind === 'due' && result.nextDueMs !== undefined) {
      if (result.nextDueMs === null) this.nextDue.delete(target.stream);
      else this.nextDue.set(target.stream, result.nextDueMs);
    }
    if (kind === 'idle') this.cursors.set(target.stream, result.nextCursor === '0-0' ? '-' : result.nextCursor);
    if (kind === 'idle' && result.entries.length > 0) {
      this.hooks.onReclaimed(result.entries.length, target.stream);
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
