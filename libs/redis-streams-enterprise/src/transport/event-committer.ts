/**
 * How a successfully handled event is settled: a plain ack, or the commit script that writes the handler's
 * transaction (writes + routed emits), the exactly-once processed record and the XACK in one fenced step; plus the
 * causal "handled" mark its dependants wait for. Kept apart from MessageProcessor so the orchestrator only decides
 * success or failure, and everything that makes a success durable (and its Cluster slot rule) reads in one place.
 */
import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { keySlot } from '../cluster/key-slot.js';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { isCluster } from '../connection/redis-connection.factory.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { TransactionCrossSlotError } from '../errors/transaction-cross-slot.error.js';
import { errorText } from '../observability/log-format.js';
import type { PartitioningManager } from '../partitioning/partitioning.manager.js';
import { encodeMessage, serializePayload, type DecodedMessage } from '../wire/envelope.js';
import type { RedisStreamsContext } from './redis-streams.context.js';
import type { RedisStreamsTransaction, TransactionEmit } from './redis-streams.transaction.js';
import type { MessageTracer } from '../observability/telemetry.js';
import type { CommitRequest, Settler } from './settler.js';
import type { PayloadCodec } from '../payload-codec/payload-codec.js';

/** The ownership of a partitioned entry's partition (see ProcessOptions): commits are fenced by it. */
export interface CommitFence {
  /** Lease value of the entry's partition: commits are refused once it changed. */
  readonly lease?: string;
  /** False once the partition is no longer this consumer's; keeps a failed ack or commit retrying until then. */
  readonly stillOwned?: () => boolean | Promise<boolean>;
  /** The entry's ordered lane (a key, a partition, the topic), when it has one. */
  readonly lane?: string;
  /** Lets the lane's next entry start before this one's acknowledgement is confirmed (see complete()). */
  readonly releaseLane?: () => void;
  /** Unordered entries: gives the in-flight slot back once the plain ack is queued (see complete()). */
  readonly releaseSlot?: () => void;
}

export class EventCommitter {
  // Same context as the rest of the processing path, so users filter one logger for every delivery outcome.
  private readonly logger = new Logger('RedisStreamsServer');
  private partitioning?: PartitioningManager;
  /** Tracing (observability.tracing): transactional emits carry the trace context like any other publish. */
  tracer?: MessageTracer;

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly redis: ScriptedRedis,
    private readonly keys: StreamKeys,
    private readonly settler: Settler,
    private readonly codec: PayloadCodec,
  ) {}

  /** Routes transactional emits to partitioned topics. */
  usePartitioning(partitioning: PartitioningManager): void {
    this.partitioning = partitioning;
  }

  /** Exactly-once: whether this group committed the message already (a cheap pre-check; the commit checks atomically). */
  async processedAlready(entry: DeliveredEntry, message: DecodedMessage): Promise<boolean> {
    const key = this.keys.processedOf(entry.stream, this.config.consumer.group, this.dedupeKeyOf(message));
    try {
      return (await this.redis.exists(key)) === 1;
    } catch {
      return false; // unknown: the commit script checks again atomically
    }
  }

  /** The writes of the handler's transaction, or the error that fails the attempt (cross-slot keys, an emit that cannot be routed). */
  async prepareWrites(entry: DeliveredEntry, context: RedisStreamsContext): Promise<{ writes: CommitRequest['writes'] } | { error: unknown }> {
    const tx = context.pendingTransaction();
    if (!tx || tx.isEmpty) return { writes: [] };
    try {
      return { writes: await this.resolveWrites(entry, tx) };
    } catch (error) {
      return { error };
    }
  }

  /**
   * A handler succeeded: mark it handled for causal dependants, then acknowledge; with exactly-once or a
   * transaction, through the commit script (writes + processed record + XACK in one step, fenced by the lease).
   */
  async complete(
    entry: DeliveredEntry,
    message: DecodedMessage,
    fence: CommitFence,
    writes: CommitRequest['writes'],
  ): Promise<void> {
    if (this.config.ordering.enabled && this.config.ordering.strategy === 'causal') {
      await this.markHandled(message);
    }
    const exactlyOnce = this.config.exactlyOnce.enabled;
    if (!exactlyOnce && writes.length === 0) {
      const { lane, releaseLane, stillOwned, releaseSlot } = fence;
      if (lane === undefined || !releaseLane || !stillOwned) {
        const acked = this.settler.ack(entry, stillOwned);
        // Only the ack is outstanding: the next entry may run (the reading loop reads again without waiting for the
        // ack's round trip). A failed ack leaves the entry pending for the reclaimer, as before.
        releaseSlot?.();
        return acked;
      }
      // An ordered lane with nothing to commit but the ack: the next entry of the lane starts now, while the ack is on
      // its way; acks are confirmed in lane order, so a failed one can never let a later entry's ack overtake it.
      // Commits with transactional writes keep the lane until confirmed: the next handler may read their writes.
      const confirmed = this.settler.ackInLaneOrder(entry, lane, fence.lease ?? '', stillOwned);
      releaseLane();
      return confirmed;
    }
    const request = {
      lease: fence.lease,
      processedKey: exactlyOnce ? this.keys.processedOf(entry.stream, this.config.consumer.group, this.dedupeKeyOf(message)) : undefined,
      writes,
    };
    const { lane, releaseLane, stillOwned } = fence;
    if (writes.length === 0 && lane !== undefined && releaseLane && stillOwned) {
      // Exactly-once with nothing written but the processed record: as for acks above, the lane's next entry starts
      // now and commits are confirmed in lane order. With writes the lane waits: the next handler may read them.
      const committed = this.settler.commitInLaneOrder(entry, lane, request, stillOwned);
      releaseLane();
      return committed;
    }
    if (fence.stillOwned) await this.settler.commitWhileOwned(entry, request, fence.stillOwned);
    else await this.settler.commit(entry, request);
  }

  /** Each emit gets a PRODUCER span (a child of the process span) whose context its headers carry. */
  private withTraceHeaders(emits: readonly TransactionEmit[]): TransactionEmit[] {
    return emits.map((emit) => {
      const span = this.tracer?.startPublish({ operation: 'publish', pattern: emit.pattern, messageId: emit.options.messageId });
      const headers: Record<string, string> = { ...emit.options.headers };
      span?.inject(headers);
      span?.end({});
      return { ...emit, options: { ...emit.options, headers } };
    });
  }

  /** The key a message is deduplicated by: its idempotency key, else its message id. */
  private dedupeKeyOf(message: DecodedMessage): string {
    return message.idempotencyKey ?? message.messageId;
  }

  /** Records that this group handled a message (causal dependencies name it by idempotency key or message id). */
  private async markHandled(message: DecodedMessage): Promise<void> {
    const { group } = this.config.consumer;
    const { windowMs } = this.config.exactlyOnce;
    const names = new Set([message.messageId, ...(message.idempotencyKey === undefined ? [] : [message.idempotencyKey])]);
    await Promise.all([...names].map((name) => this.redis.set(this.keys.causalDone(group, name), '1', 'PX', windowMs))).catch((error: unknown) => {
      this.logger.warn(`Could not record a handled message for its dependants (they wait until ordering.timeoutMs): ${errorText(error)}`);
    });
  }

  /**
   * The writes of a transaction, emits encoded and routed. On Redis Cluster all of them must live in the slot of the
   * consumed stream, or the script could not run them atomically.
   * @throws TransactionCrossSlotError
   */
  private async resolveWrites(entry: DeliveredEntry, tx: RedisStreamsTransaction): Promise<CommitRequest['writes']> {
    const writes: { command: string; key: string; args: readonly string[] }[] = [...tx.writes];
    for (const emit of this.tracer ? this.withTraceHeaders(tx.emits) : tx.emits) {
      const route = this.partitioning?.enabled
        ? await this.partitioning.routeToSend(emit.pattern, emit.data, { partitionKey: emit.options.partitionKey, idempotencyKey: emit.options.idempotencyKey })
        : undefined;
      const messageId = emit.options.messageId ?? randomUUID();
      // Transactional emits are encrypted and compressed like any other message (encryption.*, compression.*).
      const encoded = await this.codec.encode(serializePayload(emit.data), emit.pattern, messageId, emit.options.headers);
      const fields = encodeMessage({
        pattern: emit.pattern,
        messageId,
        json: encoded.json,
        encoding: encoded.encoding,
        headers: encoded.headers,
        key: route?.key ?? emit.options.partitionKey,
        idempotencyKey: emit.options.idempotencyKey,
        epoch: route?.epoch,
        dependsOn: emit.options.dependsOn,
      });
      writes.push({ command: 'XADD', key: route?.stream ?? this.keys.stream(emit.pattern), args: ['*', ...fields] });
    }
    if (isCluster(this.redis)) {
      const slot = keySlot(entry.stream);
      const foreign = writes.filter((w) => keySlot(w.key) !== slot).map((w) => w.key);
      if (foreign.length > 0) throw new TransactionCrossSlotError(entry.stream, foreign);
    }
    return writes;
  }
}
