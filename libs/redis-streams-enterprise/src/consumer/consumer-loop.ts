import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { parseNewEntries, type DeliveredEntry } from '../connection/redis-replies.js';
import { classifyRedisError } from '../connection/redis-error-codes.js';
import { errorText, logFields, logIds } from '../observability/log-format.js';
import { BackgroundLoop } from '../runtime/background-loop.js';
import { loopReport, type LoopHealthReport } from '../observability/loop-health.js';
import type { InFlight } from '../runtime/in-flight.js';
import { blockingRead } from '../connection/blocking-read.js';

export interface ConsumerLoopSettings {
  readonly group: string;
  readonly consumer: string;
  readonly batchSize: number;
}

/** Where a loop gets new entries from: a blocking read on one server, or rounds of slot reads on a Cluster. */
export interface EntryReader {
  /**
   * New entries as XREADGROUP replies, at most `count` per stream, waiting a bounded time when there are none.
   * `error`: a failure after some entries were read already (they are pending on this consumer: handle them first).
   */
  read(count: number): Promise<{ replies: unknown[]; error?: unknown }>;
}

/**
 * One `XREADGROUP ... COUNT n BLOCK ms STREAMS s1 s2 ... > >` over all streams on a dedicated connection (a single
 * server, or streams of one Cluster slot), with a watchdog: a read that outlives BLOCK by the margin drops the socket
 * (a half-open TCP connection otherwise leaves the read pending forever).
 */
export class BlockingEntryReader implements EntryReader {
  private readonly ids: string[];

  constructor(
    private readonly redis: Redis,
    private readonly settings: { readonly streams: readonly string[]; readonly group: string; readonly consumer: string; readonly blockMs: number; readonly watchdogMs: number },
  ) {
    this.ids = settings.streams.map(() => '>');
  }

  async read(count: number): Promise<{ replies: unknown[] }> {
    const { streams, group, consumer, blockMs, watchdogMs } = this.settings;
    // Arrays, not spread arguments: tens of thousands of streams overflow the call stack when spread.
    // ioredis flattens array arguments; `call` would skip the reply transformation (RESP3 map to pairs).
    const read = () => (this.redis.xreadgroup as (...args: unknown[]) => Promise<unknown>)('GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', streams, this.ids);
    const reply = await blockingRead(this.redis, read, blockMs + watchdogMs);
    return { replies: reply === null || reply === undefined ? [] : [reply] };
  }
}

export interface ConsumerLoopHooks {
  /** Handles one entry; must never reject (failures are handled inside). */
  /** `freeSlot`: InFlight's, to be passed on as ProcessOptions.releaseSlot. */
  readonly dispatch: (entry: DeliveredEntry, freeSlot?: () => void) => Promise<void>;
  /** Called when Redis says the group is gone (stream deleted, Redis restarted without persistence). */
  readonly recreateGroups: () => Promise<void>;
  /** Entries whose payload was deleted by trimming while pending. */
  readonly onDeleted: (stream: string, ids: string[]) => void;
}

/** Pause after a failed read before the next (ioredis reconnects meanwhile). */
const READ_RETRY_MS = 500;

/**
 * The reading loop: reads new entries (EntryReader) and hands each to `dispatch` while holding an in-flight slot.
 * It reads only as many entries as there are free slots and waits when none are free, so a slow handler slows
 * reading instead of growing memory.
 *
 * It never dies on an error: connection errors back off and retry (ioredis reconnects), NOGROUP recreates the
 * groups.
 */
export class ConsumerLoop {
  private readonly logger = new Logger('RedisStreamsConsumerLoop');
  /** One iteration hands out what was read, waits for free slots and reads once; a failed read is retried after READ_RETRY_MS. */
  private readonly loop: BackgroundLoop;
  // COUNT applies to each stream of a multi-stream read, so one read can return more entries than there are
  // free slots. The surplus waits here (at most streams x batchSize entries) and nothing new is read until it
  // has been handed out, so the number of running handlers never exceeds consumer.concurrency.
  private backlog: DeliveredEntry[] = [];
  /** When the read in progress started (waiting for free slots is not reading: slow handlers are not a stuck loop). */
  private readingSince?: number;

  constructor(
    private readonly reader: EntryReader,
    private readonly settings: ConsumerLoopSettings,
    private readonly inFlight: InFlight,
    private readonly hooks: ConsumerLoopHooks,
  ) {
    const { group, consumer } = settings;
    this.loop = new BackgroundLoop(() => this.readOnce(), {
      intervalMs: 0,
      retryMs: READ_RETRY_MS,
      onFailing: (error) => this.logger.warn(`Reading failed, retrying: ${errorText(error)} ${logIds({ group })}`, logFields({ group, consumer, reason: 'read-failed', error })),
      onRecovered: () => this.logger.log(`Reading resumed ${logIds({ group, consumer })}`),
    });
  }

  get isRunning(): boolean {
    return this.loop.isRunning;
  }

  /**
   * Its health: failing reads in a row, or one read that outlived `stuckAfterMs` (the watchdog should have ended it
   * at BLOCK plus its margin).
   */
  health(stuckAfterMs: number | null, now: number = Date.now()): LoopHealthReport {
    const report = loopReport('reading', this.loop.health(now), stuckAfterMs);
    return { ...report, busyMs: this.readingSince === undefined ? null : Math.max(0, now - this.readingSince) };
  }

  start(): void {
    this.loop.start();
  }

  /** Stops reading. The blocking connection is disconnected by the owner to interrupt a pending BLOCK. */
  async stop(): Promise<void> {
    const stopped = this.loop.stop();
    this.inFlight.wakeAll();
    await stopped;
    if (this.backlog.length > 0) {
      // Read but never started: they stay pending in Redis and another consumer claims them.
      this.inFlight.releaseHeld();
      this.backlog = [];
    }
  }

  private async readOnce(): Promise<void> {
    const running = () => this.loop.isRunning;
    const { batchSize } = this.settings;
    while (this.backlog.length > 0 && running()) {
      if (this.inFlight.available === 0) await this.inFlight.whenAvailable();
      const free = Math.min(this.inFlight.available, this.backlog.length);
      for (const entry of this.backlog.splice(0, free)) this.inFlight.run(entry.stream, entry.id, (freeSlot) => this.hooks.dispatch(entry, freeSlot));
    }
    if (!running()) return;
    // Read again once a batch fits or half the slots are free, whichever is smaller: reading as soon as one slot
    // frees turns a busy consumer into a stream of one-entry reads (a round trip each), while waiting for all
    // slots would make every batch wait for its slowest handler.
    await this.inFlight.whenAvailable(Math.min(batchSize, Math.max(1, Math.floor(this.inFlight.limit / 2))));
    if (!running()) return;
    // Never 0: XREADGROUP COUNT 0 means "no limit" (the reclaimer may have taken the free slots meanwhile).
    const count = Math.max(1, Math.min(batchSize, this.inFlight.available));
    let read: { replies: unknown[]; error?: unknown };
    this.readingSince = Date.now();
    try {
      read = await this.reader.read(count);
    } catch (error) {
      if (!running()) return;
      return this.onReadError(error);
    } finally {
      this.readingSince = undefined;
    }
    for (const reply of read.replies) {
      parseNewEntries(reply, (stream, entries, deleted) => {
        for (const entry of entries) {
          this.inFlight.hold(stream, entry.id);
          this.backlog.push(entry);
        }
        if (deleted.length > 0) this.hooks.onDeleted(stream, deleted);
      });
    }
    if (read.error !== undefined && running()) await this.onReadError(read.error);
  }

  /**
   * NOGROUP: recreates the groups, and the next read follows at once. Any other error (or a failed recreation) fails
   * the iteration: the loop logs it once and reads again after READ_RETRY_MS.
   */
  private async onReadError(error: unknown): Promise<void> {
    if (classifyRedisError(error) !== 'nogroup') throw error;
    this.logger.error(
      `Consumer group or stream disappeared (deleted, evicted, or Redis restarted without persistence); ` +
        `recreating it. Entries written before it vanished may be lost. ${logIds({ group: this.settings.group })}`,
    );
    await this.hooks.recreateGroups();
  }
}
