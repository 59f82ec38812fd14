import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { isCluster } from '../connection/redis-connection.factory.js';
import { classifyRedisError } from '../connection/redis-error-codes.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { errorText, logIds } from '../observability/log-format.js';
import { OrderedDispatcher, type OwnedPartition } from '../ordering/ordered-dispatcher.js';
import type { OrderingManager } from '../ordering/ordering.manager.js';
import { blockingRead, clientIdOf, readWithPendingCheck } from '../connection/blocking-read.js';
import type { InFlight } from '../runtime/in-flight.js';
import type { EntryProcessor } from './entry-processor.js';
import type { MultiSlotReader } from '../cluster/multi-slot-reader.js';
import { BackgroundLoop, type LoopErrorVerdict } from '../runtime/background-loop.js';
import { loopReport, type LoopHealthReport } from '../observability/loop-health.js';
import { sleep } from '../runtime/sleeper.js';
import { PartitionCoordinator, type LeasedPartition } from '../partitioning/partition-coordinator.js';
import { parentsOf } from '../partitioning/partition-layout.js';
import type { PartitioningManager } from '../partitioning/partitioning.manager.js';
import { PartitionTakeover } from './partition-takeover.js';

export interface PartitionedConsumerDeps {
  readonly config: ResolvedRedisStreamsConfig;
  readonly patterns: readonly string[];
  readonly command: ScriptedRedis;
  readonly blocking: Redis;
  /** Redis Cluster: reads the owned partitions slot by slot, with the doorbell (absent on a single server). */
  readonly slotReader?: MultiSlotReader;
  readonly keys: StreamKeys;
  readonly partitioning: PartitioningManager;
  readonly ordering: OrderingManager;
  readonly inFlight: InFlight;
  readonly processor: EntryProcessor;
  readonly onDeleted: (stream: string, ids: string[]) => void;
}

/** Pause after a failed reading round before the next (ioredis reconnects meanwhile). */
const READ_RETRY_MS = 500;

/** How often an entry waiting for a lapsed lease to be renewed (or lost) looks again. */
const LAPSE_RECHECK_MS = 20;

/** Longest BLOCK of a partition read: a newly assigned partition is read within this even without CLIENT UNBLOCK. */
const MAX_PARTITION_BLOCK_MS = 1_000;
/**
 * Up to this many partitions, a blocking read carries the takeover's stale-read check (one XPENDING summary per
 * partition) in the same pipeline: Redis runs it right after the read returns, which saves the round trip a separate
 * check costs after every read that returned entries (a third of an ordered partition's reading time). Above it, the
 * check asks only about the partitions that returned entries, after the read.
 */
const INLINE_PENDING_CHECK_MAX = 16;

/**
 * Consumes partitioned topics: the coordinator decides which partitions this consumer owns; on assignment their
 * pending entries (left by the previous owner) are taken over first, in id order, then new entries are read; the
 * dispatcher runs them in the order the strategy promises. On revocation (rebalance, shutdown) reading the
 * partition stops, queued entries stay pending for the next owner, running handlers finish, then the lease is given
 * back. Retries happen in place (nothing overtakes a failed message of its key), so there is no reclaimer here.
 */
export class PartitionedConsumer {
  private readonly logger = new Logger('RedisStreamsPartitions');
  private readonly coordinator: PartitionCoordinator;
  private readonly dispatcher: OrderedDispatcher;
  /** Claims of pending entries (on assignment, after a stale read of a former owner) and what reads may dispatch. */
  private readonly takeover: PartitionTakeover;
  /** The XREADGROUP in progress, so a revocation can wait until no more entries of the partition arrive here. */
  private readInFlight?: Promise<unknown>;
  private wakeScheduled = false;
  /**
   * Reading rounds: takeover, then a read. NOGROUP (groups recreated) and UNBLOCKED (a read ended on purpose) do not
   * count as failures; any other error is logged once and retried after READ_RETRY_MS.
   */
  private readonly loop: BackgroundLoop;
  private running = false;
  private blockingClientId?: number;

  constructor(private readonly deps: PartitionedConsumerDeps) {
    const { config, command, keys, partitioning, ordering, inFlight } = deps;
    const group = config.consumer.group;
    this.loop = new BackgroundLoop(() => this.readRound(), {
      intervalMs: 0,
      retryMs: READ_RETRY_MS,
      onError: (error) => this.onReadError(error),
      onFailing: (error) => this.logger.warn(`Reading partitions failed, retrying: ${errorText(error)} ${logIds({ group })}`),
      onRecovered: () => this.logger.log(`Reading partitions resumed ${logIds({ group, consumer: config.consumer.consumerName })}`),
    });
    this.dispatcher = new OrderedDispatcher(
      inFlight,
      ordering,
      {
        process: (entry, partition, flags) => this.process(entry, partition, flags),
        control: (entry, partition) => this.control(entry, partition),
        parentsDrained: async (partition, epoch) => {
          const layout = await partitioning.layoutOf(partition.pattern, true);
          const parents = parentsOf(layout, partition.partition, epoch);
          const marks = await Promise.all(parents.map((q) => command.exists(keys.drainedOf(keys.partition(partition.pattern, q), group, epoch))));
          return marks.every((m) => m === 1);
        },
        dependenciesDone: async (dependencies) => {
          const done = await Promise.all(dependencies.map((d) => command.exists(keys.causalDone(group, d))));
          return done.every((d) => d === 1);
        },
      },
      { queueLimit: Math.max(config.consumer.batchSize * 2, 16), causalTimeoutMs: config.ordering.timeoutMs, readWhenHalfFree: oneLanePerPartition(config) },
    );
    this.takeover = new PartitionTakeover({
      config,
      command,
      keys,
      dispatcher: this.dispatcher,
      onDeleted: deps.onDeleted,
      owned: () => this.coordinator.ownedPartitions().map((p) => p.stream),
      logger: this.logger,
    });
    const { partitioning: p } = config;
    this.coordinator = new PartitionCoordinator(
      command,
      keys,
      partitioning,
      {
        patterns: deps.patterns,
        group,
        consumer: config.consumer.consumerName,
        groupStartId: config.consumer.groupStartId,
        sessionTimeoutMs: p.sessionTimeoutMs,
        balanced: p.loadBalancing,
        autoScaleEveryMs: p.enabled && p.strategy === 'dynamic' && p.autoScaling ? p.rebalanceInterval : undefined,
      },
      {
        assigned: async (partition) => this.assigned(partition),
        revoked: async (partition) => {
          this.takeover.end(partition.stream);
          await this.dispatcher.remove(partition.stream);
          // A read already sent may still deliver entries of this partition to this consumer; only once it returned
          // may the next owner take over (it claims whatever is pending, including those).
          await this.readBarrier();
        },
        lost: (partition) => {
          this.takeover.end(partition.stream);
          void this.dispatcher.remove(partition.stream);
        },
      },
    );
  }

  async start(): Promise<void> {
    for (const pattern of this.deps.patterns) {
      const layout = await this.deps.partitioning.layoutOf(pattern);
      for (let p = 0; p < Math.max(...layout.counts); p++) this.deps.processor.addStream(this.deps.keys.partition(pattern, p), pattern);
    }
    await this.rememberBlockingClientId();
    this.deps.blocking.on('ready', () => void this.rememberBlockingClientId());
    this.running = true;
    await this.coordinator.start();
    if (this.running) this.loop.start();
  }

  /** Stops reading (the owner disconnects the blocking connection), lets handlers finish and gives every lease back. */
  async stopReading(): Promise<void> {
    this.running = false;
    const stopped = this.loop.stop();
    this.deps.slotReader?.wake();
    this.dispatcher.close();
    await stopped;
  }

  async leave(): Promise<void> {
    await this.coordinator.stop();
  }

  /** Partitions this consumer owns now. */
  ownedPartitions(): LeasedPartition[] {
    return this.coordinator.ownedPartitions();
  }

  /** One coordination round now (tests, operators). */
  rebalanceNow(): Promise<void> {
    return this.coordinator.tick();
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Health of the reading rounds: failures in a row (a round waits for partitions, so no stuck limit). */
  health = (): LoopHealthReport => loopReport('reading partitions', this.loop.health(), null);

  private async assigned(partition: LeasedPartition): Promise<void> {
    this.deps.processor.addStream(partition.stream, partition.pattern);
    this.dispatcher.add(partition);
    this.takeover.begin(partition.stream, partition.lease);
    this.deps.slotReader?.markDue(partition.stream);
    this.logger.log(`Partition assigned ${logIds({ stream: partition.stream, group: this.deps.config.consumer.group })} lease=${partition.lease}`);
    this.wakeReader();
  }

  private process(entry: DeliveredEntry, partition: OwnedPartition, flags: { causalTimedOut: boolean; lane: string | null; releaseLane: () => void }): Promise<void> {
    const { stream, lease } = partition;
    if (!this.coordinator.holds(stream) || this.coordinator.leaseOf(stream) !== lease) {
      return this.whenHeld(stream, lease).then((held) => (held ? this.process(entry, partition, flags) : undefined));
    }
    const { ordering, retry } = this.deps.config;
    return this.deps.processor.process(entry, {
      lease,
      partition: partition.partition,
      inlineAttempts: ordering.enabled ? ordering.retryAttempts : retry.attempts,
      // Waits out a lapse: giving up on a lease that is then renewed would let the key's next entry overtake this one.
      stillOwned: () => this.whenHeld(stream, lease),
      causalTimedOut: flags.causalTimedOut,
      lane: flags.lane ?? undefined,
      releaseLane: flags.releaseLane,
    });
  }

  /**
   * True once the partition's lease is held again, false once it is gone (or this consumer stops). A lease that lapsed
   * locally (a late renewal: a stall, a slow Redis) is waited out, holding the entry's lane: skipped, the entry would
   * be stranded if the renewal then succeeds (nobody takes this consumer's pending entries over) while later entries
   * of its key are handled. Once gone, the entry stays pending for the next owner, whose takeover claims it in order —
   * also when that owner is this consumer again: an entry dispatched under one lease is never handled under the next
   * (found by the soak, seed 42: an entry waiting out a lapse that ended in a lost and re-taken lease was skipped while
   * a read of the old period handed a later entry of its key to the new one).
   */
  private async whenHeld(stream: string, lease: string | undefined): Promise<boolean> {
    for (;;) {
      const state = this.coordinator.leaseState(stream);
      if (this.coordinator.leaseOf(stream) !== lease) return false;
      if (state === 'held') return true;
      if (state === 'gone' || !this.running) return false;
      await sleep(LAPSE_RECHECK_MS);
    }
  }

  /** End of a layout epoch in this partition: everything before it is settled, so record that and move on. */
  private async control(entry: DeliveredEntry, partition: OwnedPartition): Promise<void> {
    // Not skipped while the lease has only lapsed: the mark of the epoch's end would never be written.
    if (!(await this.whenHeld(partition.stream, partition.lease))) return;
    const { command, keys, config } = this.deps;
    const group = config.consumer.group;
    const epoch = Number(entry.fields.epoch);
    try {
      if (entry.fields['rse.control'] === 'epoch' && Number.isInteger(epoch)) {
        await command.set(keys.drainedOf(partition.stream, group, epoch), '1');
      }
      await command.xack(partition.stream, group, entry.id);
    } catch (error) {
      this.logger.warn(`Could not record the end of a layout epoch; retried on redelivery: ${errorText(error)} ${logIds({ stream: partition.stream })}`);
    }
  }

  private async readRound(): Promise<void> {
    await this.takeover.round();
    if (this.deps.slotReader) await this.readSlots(this.deps.slotReader);
    else await this.readBlocking();
  }

  /**
   * After an error the next round comes after READ_RETRY_MS while reading fails, at once (a yield) otherwise: NOGROUP
   * and UNBLOCKED leave that state as it was.
   */
  private onReadError(error: unknown): LoopErrorVerdict {
    if (classifyRedisError(error) === 'nogroup') {
      this.logger.error(`Consumer group or partition stream disappeared; recreating it. Entries written before may be lost. ${logIds({ group: this.deps.config.consumer.group })}`);
      this.coordinator.forgetGroups();
      void this.coordinator.tick();
      return 'expected';
    }
    return /UNBLOCKED/.test(errorText(error)) ? 'expected' : 'failure';
  }

  /** A partition may be read when it is ours, dispatched here and not being taken over. */
  private readable(stream: string): boolean {
    return this.dispatcher.has(stream) && !this.takeover.has(stream) && this.coordinator.holds(stream);
  }

  /** Single server: one blocking read over every readable partition (CLIENT UNBLOCK ends it for a new one). */
  private async readBlocking(): Promise<void> {
    const { blocking, config } = this.deps;
    const { group, consumerName, batchSize, blockMs } = config.consumer;
    const streams = this.dispatcher.readable().filter((s) => this.readable(s));
    if (streams.length === 0) {
      await this.dispatcher.whenRoom(200);
      return;
    }
    const count = Math.max(1, Math.min(batchSize, ...streams.map((s) => this.dispatcher.readRoom(s))));
    const block = Math.min(blockMs, MAX_PARTITION_BLOCK_MS);
    // Arrays, not spread arguments: thousands of partitions overflow the call stack when spread.
    const args = ['GROUP', group, consumerName, 'COUNT', count, 'BLOCK', block, 'STREAMS', streams, streams.map(() => '>')];
    type ReadResult = { reply: unknown; pending: Map<string, unknown> | undefined };
    const read = blockingRead<ReadResult>(
      blocking,
      () =>
        streams.length <= INLINE_PENDING_CHECK_MAX
          ? readWithPendingCheck(blocking, args, streams, group)
          : (blocking.xreadgroup as (...a: unknown[]) => Promise<unknown>)(...args).then((reply) => ({ reply, pending: undefined })),
      block + config.connection.blockingWatchdogMs,
    );
    this.readInFlight = read;
    // A partition left out because its queue is full may get room while this read blocks on the others: end the read
    // then, or its handlers idle for up to `block` ms (measured: one consumer of two partitions with exactly-once ran
    // at a fifth of one partition's rate, stalled a second at a time).
    const full = this.dispatcher.full();
    const stopWaiting = full.length > 0 ? this.dispatcher.onRoomIn(full, () => this.wakeReaderNow()) : undefined;
    let result: ReadResult;
    try {
      result = await read.finally(() => (this.readInFlight = undefined));
    } catch (error) {
      this.takeover.afterFailedRead(streams, error);
      throw error;
    } finally {
      stopWaiting?.();
    }
    await this.takeover.deliver(result.reply, result.pending);
  }

  /**
   * Redis Cluster: a round of slot reads over the owned partitions (cluster/multi-slot-reader.ts); when it found
   * nothing, waits for a doorbell ring, for room in a full partition queue, or for a newly assigned partition.
   */
  private async readSlots(reader: MultiSlotReader): Promise<void> {
    const { config } = this.deps;
    const { batchSize, blockMs } = config.consumer;
    const streams = this.coordinator.ownedPartitions().map((p) => p.stream).filter((s) => this.dispatcher.has(s));
    // Checked again for each stream as the round is sent: a partition revoked meanwhile must not be read any more.
    const countOf = (stream: string) => (this.readable(stream) ? Math.min(batchSize, this.dispatcher.readRoom(stream)) : 0);
    const read = reader.read(streams, countOf);
    this.readInFlight = read;
    const { replies, entries, error } = await read.finally(() => (this.readInFlight = undefined));
    for (const reply of replies) await this.takeover.deliver(reply);
    if (error !== undefined) {
      this.takeover.afterFailedRead(streams, error);
      throw error;
    }
    if (entries > 0 || !this.running) return;
    const block = Math.min(blockMs, MAX_PARTITION_BLOCK_MS);
    await Promise.race([reader.wait(block), this.dispatcher.whenRoom(block)]);
    reader.wake(); // ends whichever wait is left
  }

  /** Resolves once the read in progress (if any) returned; interrupts its BLOCK. */
  private async readBarrier(): Promise<void> {
    const read = this.readInFlight;
    if (!read) return;
    this.wakeReaderNow();
    await read.catch(() => undefined);
  }

  /** Ends the pending BLOCK (single server) or doorbell wait (Cluster) so a newly assigned partition is read at once. */
  private wakeReader(): void {
    // Partitions are assigned in batches: one wake for the batch.
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.wakeReaderNow();
    });
  }

  private wakeReaderNow(): void {
    this.loop.wake();
    this.deps.slotReader?.wake();
    if (this.blockingClientId === undefined || isCluster(this.deps.command)) return;
    this.deps.command.client('UNBLOCK', this.blockingClientId).catch(() => undefined); // the read ends by BLOCK anyway
  }

  private async rememberBlockingClientId(): Promise<void> {
    if (isCluster(this.deps.command)) return;
    // Undefined when it cannot be had now: a read then ends by its BLOCK time instead; asked again on 'ready'.
    this.blockingClientId = await clientIdOf(this.deps.blocking, this.deps.config.connection.blockingWatchdogMs);
  }
}

/** One lane per partition (global order, or partition order without a key): more queued entries add no parallelism. */
function oneLanePerPartition(config: PartitionedConsumerDeps['config']): boolean {
  const { enabled, strategy, partitionKey } = config.ordering;
  return enabled && (strategy === 'global' || (strategy === 'partition' && partitionKey === undefined));
}
