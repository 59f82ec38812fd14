import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { parseNewEntries, type DeliveredEntry } from '../connection/redis-replies.js';
import { classifyRedisError } from '../connection/redis-error-codes.js';
import { errorText, logIds } from '../observability/log-format.js';
import type { InFlight } from '../runtime/in-flight.js';
import { Sleeper } from '../runtime/sleeper.js';
import { withReadWatchdog } from '../connection/blocking-read.js';

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
    const read = (this.redis.xreadgroup as (...args: unknown[]) => Promise<unknown>)('GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', streams, this.ids);
    const reply = await withReadWatchdog(this.redis, read, blockMs + watchdogMs);
    return { replies: reply === null || reply === undefined ? [] : [reply] };
  }
}

export interface ConsumerLoopHooks {
  /** Handles one entry; must never reject (failures are handled inside). */
  readonly dispatch: (entry: DeliveredEntry) => Promise<void>;
  /** Called when Redis says the group is gone (stream deleted, Redis restarted without persistence). */
  readonly recreateGroups: () => Promise<void>;
  /** Entries whose payload was deleted by trimming while pending. */
  readonly onDeleted: (stream: string, ids: string[]) => void;
}

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
  private running = false;
  private loop?: Promise<void>;
  private readonly sleeper = new Sleeper();
  private failing = false;

  constructor(
    private readonly reader: EntryReader,
    private readonly settings: ConsumerLoopSettings,
    private readonly inFlight: InFlight,
    private readonly hooks: ConsumerLoopHooks,
  ) {}

  get isRunning(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops reading. The blocking connection is disconnected by the owner to interrupt a pending BLOCK. */
  async stop(): Promise<void> {
    this.running = false;
    this.inFlight.wakeAll();
    this.sleeper.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { group, consumer, batchSize } = this.settings;
    // COUNT applies to each stream of a multi-stream read, so one read can return more entries than there are
    // free slots. The surplus waits here (at most streams x batchSize entries) and nothing new is read until it
    // has been handed out, so the number of running handlers never exceeds consumer.concurrency.
    let backlog: DeliveredEntry[] = [];
    while (this.running) {
      while (backlog.length > 0 && this.running) {
        if (this.inFlight.available === 0) await this.inFlight.whenAvailable();
        const free = Math.min(this.inFlight.available, backlog.length);
        for (const entry of backlog.splice(0, free)) this.inFlight.run(entry.stream, entry.id, () => this.hooks.dispatch(entry));
      }
      if (!this.running) break;
      // Read again once a batch fits or half the slots are free, whichever is smaller: reading as soon as one slot
      // frees turns a busy consumer into a stream of one-entry reads (a round trip each), while waiting for all
      // slots would make every batch wait for its slowest handler.
      await this.inFlight.whenAvailable(Math.min(batchSize, Math.max(1, Math.floor(this.inFlight.limit / 2))));
      if (!this.running) break;
      // Never 0: XREADGROUP COUNT 0 means "no limit" (the reclaimer may have taken the free slots meanwhile).
      const count = Math.max(1, Math.min(batchSize, this.inFlight.available));
      let read: { replies: unknown[]; error?: unknown };
      try {
        read = await this.reader.read(count);
      } catch (error) {
        if (!this.running) break;
        await this.onReadError(error);
        continue;
      }
      if (this.failing) {
        this.failing = false;
        this.logger.log(`Reading resumed ${logIds({ group, consumer })}`);
      }
      for (const reply of read.replies) {
        parseNewEntries(reply, (stream, entries, deleted) => {
          for (const entry of entries) {
            this.inFlight.hold(stream, entry.id);
            backlog.push(entry);
          }
          if (deleted.length > 0) this.hooks.onDeleted(stream, deleted);
        });
      }
      if (read.error !== undefined && this.running) await this.onReadError(read.error);
    }
    if (backlog.length > 0) {
      // Read but never started: they stay pending in Redis and another consumer claims them.
      this.inFlight.releaseHeld();
      backlog = [];
    }
  }

  private async onReadError(error: unknown): Promise<void> {
    const kind = classifyRedisError(error);
    if (kind === 'nogroup') {
      this.logger.error(
        `Consumer group or stream disappeared (deleted, evicted, or Redis restarted without persistence); ` +
          `recreating it. Entries written before it vanished may be lost. ${logIds({ group: this.settings.group })}`,
      );
      try {
        await this.hooks.recreateGroups();
        return;
      } catch (recreateError) {
        error = recreateError;
      }
    }
    if (!this.failing) {
      this.failing = true;
      this.logger.warn(`Reading failed, retrying: ${errorText(error)} ${logIds({ group: this.settings.group })}`);
    }
    await this.sleeper.sleep(500);
  }

}
