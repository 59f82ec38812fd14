import { BaseRpcContext } from '@nestjs/microservices';
import type { MessageHeaders } from '../wire/envelope.js';
import { RedisStreamsTransaction } from './redis-streams.transaction.js';
import { InvalidUsageError } from '../errors/invalid-usage.error.js';

/** Ordering and exactly-once details of a message (absent for plain topics). */
export interface MessageOrderingInfo {
  /** Partition of the topic the message was read from. */
  readonly partition?: number;
  /** Partition / ordering key stamped by the producer. */
  readonly key?: string;
  /** Global sequence number (global ordering): 1, 2, 3, ... per topic. */
  readonly sequence?: number;
  readonly idempotencyKey?: string;
  readonly dependsOn?: readonly string[];
}

type RedisStreamsContextArgs = [
  stream: string,
  entryId: string,
  group: string,
  consumer: string,
  deliveryCount: number,
  headers: MessageHeaders,
  pattern: string,
  messageId: string,
  ordering?: MessageOrderingInfo,
];

/** How a handler settles its message itself (implemented by the transport). */
export interface MessageControls {
  ack(context: RedisStreamsContext): Promise<void>;
  nack(context: RedisStreamsContext, delayMs: number | undefined): Promise<void>;
  deadLetter(context: RedisStreamsContext, reason: string): Promise<void>;
  working(context: RedisStreamsContext): Promise<boolean>;
}

/**
 * What a handler can learn about the message it handles, and how it can settle it; inject it with `@Ctx()`.
 *
 * ```ts
 * @StreamEvent('orders.created')
 * async handle(@Payload() order: OrderDto, @Ctx() ctx: RedisStreamsContext) {
 *   if (!isValid(order)) return ctx.deadLetter('order failed validation'); // poison: no retry
 *   if (await this.inventory.isLocked(order)) return ctx.nack({ delayMs: 5_000 }); // try again later
 *   await ctx.working(); // long work: keep the claim
 * }
 * ```
 * By default a handler that returns acknowledges its message and one that throws schedules a retry; the first
 * explicit settlement (`ack`, `nack`, `deadLetter`) replaces that default, and later ones are ignored.
 */
export class RedisStreamsContext extends BaseRpcContext<RedisStreamsContextArgs> {
  private settlement?: Promise<void>;
  private tx?: RedisStreamsTransaction;

  constructor(
    args: RedisStreamsContextArgs,
    private readonly controls?: MessageControls,
    private readonly replay = false,
  ) {
    super(args);
  }

  /**
   * True when the message is being replayed (`ReplayManager`) rather than consumed: nothing is acknowledged or
   * retried, and handlers may choose to skip side effects they must not repeat.
   */
  isReplay(): boolean {
    return this.replay;
  }

  /** Redis key of the stream the entry was read from. */
  getStream(): string {
    return this.args[0];
  }

  /** Stream entry id (`<ms>-<seq>`), unique within the stream. */
  getEntryId(): string {
    return this.args[1];
  }

  /** Consumer group this server reads as. */
  getGroup(): string {
    return this.args[2];
  }

  /** Consumer name of this server inside its group. */
  getConsumer(): string {
    return this.args[3];
  }

  /** How many times Redis has delivered this entry to this group, this delivery included (1 on the first). */
  getDeliveryCount(): number {
    return this.args[4];
  }

  /** Headers the producer attached (string values). */
  getHeaders(): MessageHeaders {
    return this.args[5];
  }

  /** The pattern the message was sent with. */
  getPattern(): string {
    return this.args[6];
  }

  /** Producer-assigned message id (stable across retries and redrives); the entry id when the producer set none. */
  getMessageId(): string {
    return this.args[7];
  }

  /** Partition of the topic the message came from (partitioned topics), else undefined. */
  getPartition(): number | undefined {
    return this.args[8]?.partition;
  }

  /** Partition / ordering key the producer stamped, if any. */
  getPartitionKey(): string | undefined {
    return this.args[8]?.key;
  }

  /** Global sequence number (`global` ordering), else undefined. */
  getSequence(): number | undefined {
    return this.args[8]?.sequence;
  }

  /** Idempotency key the producer gave, if any. */
  getIdempotencyKey(): string | undefined {
    return this.args[8]?.idempotencyKey;
  }

  /** Messages this one depends on (`causal` ordering). */
  getDependencies(): readonly string[] {
    return this.args[8]?.dependsOn ?? [];
  }

  /**
   * Writes committed atomically with this message's acknowledgement (see RedisStreamsTransaction). Returns the same
   * transaction on every call. Not available in replays and requests.
   */
  transaction(): RedisStreamsTransaction {
    if (!this.controls) throw new InvalidUsageError('transaction() is not available here (a replay, a request, or a context not made by the transport)');
    this.tx ??= new RedisStreamsTransaction();
    return this.tx;
  }

  /** The transaction opened by the handler, if any (read by the transport when it commits). */
  pendingTransaction(): RedisStreamsTransaction | undefined {
    return this.tx;
  }

  /** True once the handler settled the message itself with `ack`, `nack` or `deadLetter`. */
  isSettled(): boolean {
    return this.settlement !== undefined;
  }

  /** Acknowledges now (JetStream `ack`): even if the handler throws afterwards, the message is done. */
  ack(): Promise<void> {
    return this.settle((controls) => controls.ack(this));
  }

  /**
   * Asks for another delivery later (JetStream `nak`): counts as a failed attempt; `delayMs` replaces the backoff.
   * When the attempts are used up the message is dead-lettered instead.
   */
  nack(options: { delayMs?: number } = {}): Promise<void> {
    return this.settle((controls) => controls.nack(this, options.delayMs));
  }

  /** Dead-letters now with a reason, without further attempts (JetStream `term`, a poison message). */
  deadLetter(reason: string): Promise<void> {
    return this.settle((controls) => controls.deadLetter(this, reason));
  }

  /**
   * Tells the transport the handler is still working (JetStream `working`, Kafka heartbeat): resets the entry's idle
   * time so no other consumer claims it. The transport already does this every claimIdleMs/3; call it when a single
   * step may take longer than that. Resolves false when the entry is no longer owned by this consumer.
   */
  working(): Promise<boolean> {
    if (!this.controls) return Promise.resolve(false);
    return this.controls.working(this);
  }

  private settle(action: (controls: MessageControls) => Promise<void>): Promise<void> {
    if (!this.controls) {
      return Promise.reject(new InvalidUsageError('ack/nack/deadLetter are not available here (a replay, a request, or a context not made by the transport)'));
    }
    this.settlement ??= action(this.controls);
    return this.settlement;
  }
}
