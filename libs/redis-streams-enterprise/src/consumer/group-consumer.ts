/**
 * Consumes topics that are not partitioned, apart from the server (which decides when it starts and, in its
 * shutdown order, when each part stops): competing consumers of one group read new entries (ConsumerLoop) while
 * the reclaimer takes over retries that are due and the entries of consumers that died. The counterpart of
 * PartitionedConsumer, which needs no reclaimer.
 */
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import { ClusterEntryReader } from './cluster-entry-reader.js';
import type { ConsumedStream } from './consumed-streams.js';
import { BlockingEntryReader, ConsumerLoop } from './consumer-loop.js';
import type { InFlight } from '../runtime/in-flight.js';
import type { EntryProcessor } from './entry-processor.js';
import { PendingReclaimer } from './pending-reclaimer.js';
import type { ReadingConnections } from './server-connections.js';
import type { LoopHealthReport } from '../observability/loop-health.js';

export interface GroupConsumerDeps extends ReadingConnections {
  readonly config: ResolvedRedisStreamsConfig;
  readonly streams: readonly ConsumedStream[];
  readonly inFlight: InFlight;
  readonly processor: EntryProcessor;
  /** Called when Redis says the group is gone (stream deleted, Redis restarted without persistence). */
  readonly recreateGroups: () => Promise<void>;
  readonly onReclaimed: (count: number, stream: string) => void;
  /** Entries whose payload was deleted by trimming while pending. */
  readonly onDeleted: (stream: string, ids: string[]) => void;
}

export class GroupConsumer {
  private readonly reclaimer: PendingReclaimer;
  private readonly loop: ConsumerLoop;
  private readonly streamCount: number;
  /** A read running longer than this is stuck (the blocking-read watchdog ends a read at BLOCK plus its margin). */
  private readonly readStuckAfterMs: number;

  constructor(deps: GroupConsumerDeps) {
    const { consumer, connection } = deps.config;
    const { command, blocking, slotReader, inFlight, processor, onDeleted } = deps;
    // A handled entry's slot goes to the next one while its ack is on its way (the next read need not wait for it).
    const dispatch = (entry: DeliveredEntry, freeSlot?: () => void) => processor.process(entry, { releaseSlot: freeSlot });
    this.reclaimer = new PendingReclaimer(
      command,
      {
        streams: deps.streams,
        group: consumer.group,
        consumer: consumer.consumerName,
        claimIdleMs: consumer.claimIdleMs,
        intervalMs: consumer.reclaimIntervalMs,
        deadConsumerIdleMs: consumer.deadConsumerIdleMs,
      },
      inFlight,
      { dispatch, onReclaimed: deps.onReclaimed, onDeleted },
    );
    const streams = deps.streams.map((s) => s.stream);
    this.streamCount = streams.length;
    this.readStuckAfterMs = consumer.blockMs + connection.blockingWatchdogMs + 30_000;
    const reader = slotReader
      ? new ClusterEntryReader(slotReader, streams, consumer.blockMs)
      : new BlockingEntryReader(blocking, {
          streams,
          group: consumer.group,
          consumer: consumer.consumerName,
          blockMs: consumer.blockMs,
          watchdogMs: connection.blockingWatchdogMs,
        });
    this.loop = new ConsumerLoop(
      reader,
      { group: consumer.group, consumer: consumer.consumerName, batchSize: consumer.batchSize },
      inFlight,
      { dispatch, recreateGroups: deps.recreateGroups, onDeleted },
    );
  }

  get isRunning(): boolean {
    return this.loop.isRunning;
  }

  /** Health of the reading loop (when there are streams to read) and of the reclaimer. */
  health(): LoopHealthReport[] {
    const reclaiming = this.reclaimer.health();
    return this.streamCount > 0 ? [this.loop.health(this.readStuckAfterMs), reclaiming] : [reclaiming];
  }

  /** Takes back this consumer's own pending entries first (reclaimer), then starts reading (when there are streams). */
  async start(): Promise<void> {
    await this.reclaimer.start();
    if (this.streamCount > 0) this.loop.start();
  }

  /** A retry of an entry of `stream` is due at `dueAtMs`: the reclaimer takes it then. */
  noteRetry(stream: string, dueAtMs: number): void {
    this.reclaimer.noteRetry(stream, dueAtMs);
  }

  /** One reclaim pass now instead of waiting for the timer. */
  reclaimNow(): Promise<void> {
    return this.reclaimer.runOnce();
  }

  stopReclaiming(): Promise<void> {
    return this.reclaimer.stop();
  }

  stopReading(): Promise<void> {
    return this.loop.stop();
  }
}
