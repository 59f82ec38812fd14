import { Logger } from '@nestjs/common';
import { RpcException, type MessageHandler } from '@nestjs/microservices';
import { isObservable, lastValueFrom, of, type Observable } from 'rxjs';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import { HandlerTimeoutError } from '../errors/handler-timeout.error.js';
import { NoHandlerError } from '../errors/no-handler.error.js';
import type { TransportMetrics } from '../observability/metrics.js';
import { errorText, logIds } from '../observability/log-format.js';
import { decodeMessage, encodeMessage, encodeReply, serializePayload, toWireError, type DecodedMessage, type ReplyMessage, type WireError } from './envelope.js';
import { keySlot } from './read-groups.js';
import { randomUUID } from 'node:crypto';
import { StreamKeys } from '../connection/stream-keys.js';
import { isCluster } from '../connection/redis-connection.factory.js';
import { TransactionCrossSlotError } from '../errors/transaction-cross-slot.error.js';
import type { PartitioningManager } from '../partitioning/partitioning.manager.js';
import { backoffDelayMs } from './backoff.js';
import { fetchClaimChecked } from './claim-check.js';
import type { RedisStreamsTransaction } from './redis-streams.transaction.js';
import { RedisStreamsContext, type MessageControls } from './redis-streams.context.js';
import type { CommitRequest, Settler } from './settler.js';
import type { SchemaManager } from '../schema/schema.manager.js';
import { handlerSchemaOf, toHandlerInstance } from '../schema/handler-schema.js';
import type { IncomingRead } from '../schema/schema-reader.js';

/** How an entry of a partitioned topic is processed. */
export interface ProcessOptions {
  /** Lease value of the entry's partition: commits are refused once it changed (fencing). */
  readonly lease?: string;
  /** Partition number, for the handler's context. */
  readonly partition?: number;
  /** Retry failures in place, up to this many attempts in all, instead of scheduling a retry (ordered topics). */
  readonly inlineAttempts?: number;
  /** Checked between in-place attempts: false once the partition is no longer this consumer's. */
  readonly stillOwned?: () => boolean;
  /** The message's dependencies were not handled within ordering.timeoutMs (causal). */
  readonly causalTimedOut?: boolean;
}

const NO_OPTIONS: ProcessOptions = Object.freeze({});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}


/** What the processor needs from the server: handler lookup and Nest's processing hooks. */
export interface HandlerHost {
  getHandlerByPattern(pattern: string): MessageHandler | null;
  /** Runs `fn` between Nest's processing start and end hooks (tracing). */
  withProcessingHooks(context: RedisStreamsContext, fn: () => Promise<void>): Promise<void>;
}

/**
 * Handles one delivered entry from start to settlement:
 *   decode -> find handler -> run it -> ack on success,
 *   or on failure schedule a retry (the entry stays pending) or, after the last attempt, dead-letter it.
 * Requests (`@MessagePattern`) reply to the requester's reply stream before the ack; their failures are
 * replied as errors, not retried (the caller is waiting and has its own timeout).
 */
export class MessageProcessor implements MessageControls {
  private readonly logger = new Logger('RedisStreamsServer');
  private readonly streamPatterns = new Map<string, string>();
  private readonly keys: StreamKeys;
  private partitioning?: PartitioningManager;

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly redis: ScriptedRedis,
    private readonly settler: Settler,
    private readonly metrics: TransportMetrics,
    private readonly host: HandlerHost,
    private readonly schemas?: SchemaManager,
  ) {
    this.keys = new StreamKeys(config.streams.keyPrefix);
  }

  /** Routes transactional emits to partitioned topics. */
  usePartitioning(partitioning: PartitioningManager): void {
    this.partitioning = partitioning;
  }

  /** Registers the pattern a stream belongs to (default pattern of entries that carry none). */
  addStream(stream: string, pattern: string): void {
    this.streamPatterns.set(stream, pattern);
  }

  /** Processes one entry. Never rejects: every outcome is settled in Redis or left pending for the reclaimer. */
  async process(entry: DeliveredEntry, options: ProcessOptions = NO_OPTIONS): Promise<void> {
    this.metrics.received++;
    const streamPattern = this.streamPatterns.get(entry.stream) ?? '';
    const onlyFor = entry.fields['rse.redrive.group'];
    if (onlyFor !== undefined && onlyFor !== this.config.consumer.group) {
      // A dead letter redriven for another group: this group processed the message already.
      return this.settler.ack(entry, streamPattern);
    }
    let fields = entry.fields;
    if (fields.blob !== undefined && fields.data === undefined) {
      // A claim-checked payload (large message) is fetched first; a blob that is gone can never be decoded.
      const claimed = await fetchClaimChecked(this.redis, this.keys, entry, this.config.streams.maxPayloadBytes);
      if ('invalid' in claimed) return this.settler.deadLetter(entry, streamPattern, 'decode-failed', claimed.invalid);
      if ('unavailable' in claimed) return this.settler.fail(entry, streamPattern, claimed.unavailable);
      fields = claimed.fields;
    }
    let message: DecodedMessage;
    try {
      message = decodeMessage(entry.id, fields, streamPattern, this.config.streams.maxPayloadBytes);
    } catch (error) {
      return this.settler.deadLetter(entry, streamPattern, 'decode-failed', error);
    }
    const handler = this.host.getHandlerByPattern(message.pattern);
    if (!handler) {
      return this.settler.deadLetter(entry, streamPattern, 'no-handler', new NoHandlerError(message.pattern));
    }
    if ((message.schema !== undefined && this.schemas) || handler.extras?.schema !== undefined) {
      const checked = await this.checkSchema(message, handler);
      if ('deadLetter' in checked) return this.settler.deadLetter(entry, streamPattern, 'schema-invalid', checked.deadLetter);
      if ('retry' in checked) return this.settler.fail(entry, streamPattern, checked.retry);
      message = checked.message;
    }
    if (options.causalTimedOut && this.config.ordering.causalTimeoutPolicy === 'deadLetter') {
      const error = Object.assign(
        new Error(`dependencies ${(message.dependsOn ?? []).join(', ')} were not handled within ordering.timeoutMs (${this.config.ordering.timeoutMs} ms)`),
        { name: 'CausalTimeoutError' },
      );
      return this.settler.deadLetter(entry, streamPattern, 'causal-timeout', error);
    }
    const isEvent = handler.isEventHandler || !message.replyTo;
    if (isEvent && this.config.exactlyOnce.enabled && (await this.processedAlready(entry, message))) {
      this.metrics.duplicatesSkipped++;
      return this.settler.ack(entry, streamPattern);
    }
    const context = this.contextFor(entry, message, isEvent, entry.deliveryCount, options.partition);
    if (isEvent || message.replyTo === undefined) {
      await this.processEvent(entry, streamPattern, message, handler, context, options);
    } else {
      await this.processRequest(entry, message, handler, context, message.replyTo);
    }
  }

  private contextFor(entry: DeliveredEntry, message: DecodedMessage, isEvent: boolean, deliveryCount: number, partition?: number): RedisStreamsContext {
    const ordered =
      partition !== undefined || message.key !== undefined || message.sequence !== undefined || message.idempotencyKey !== undefined || message.dependsOn !== undefined
        ? { partition, key: message.key, sequence: message.sequence, idempotencyKey: message.idempotencyKey, dependsOn: message.dependsOn }
        : undefined;
    return new RedisStreamsContext(
      [
        entry.stream,
        entry.id,
        this.config.consumer.group,
        this.config.consumer.consumerName,
        deliveryCount,
        message.headers,
        message.pattern,
        message.messageId,
        ordered,
      ],
      isEvent ? this : undefined,
    );
  }

  /** The key a message is deduplicated by: its idempotency key, else its message id. */
  private dedupeKeyOf(message: DecodedMessage): string {
    return message.idempotencyKey ?? message.messageId;
  }

  private async processedAlready(entry: DeliveredEntry, message: DecodedMessage): Promise<boolean> {
    const key = this.keys.processedOf(entry.stream, this.config.consumer.group, this.dedupeKeyOf(message));
    try {
      return (await this.redis.exists(key)) === 1;
    } catch {
      return false; // unknown: the commit script checks again atomically
    }
  }

  private async processEvent(
    entry: DeliveredEntry,
    streamPattern: string,
    message: DecodedMessage,
    handler: MessageHandler,
    firstContext: RedisStreamsContext,
    options: ProcessOptions,
  ): Promise<void> {
    let context = firstContext;
    for (let attempt = entry.deliveryCount; ; attempt++) {
      const started = performance.now();
      let failure: { error: unknown } | undefined;
      try {
        await this.host.withProcessingHooks(context, () =>
          this.withTimeout(message.pattern, async () => {
            const result: unknown = await handler(message.data, context);
            if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
          }),
        );
      } catch (error) {
        failure = { error };
      }
      this.metrics.recordLatency(performance.now() - started);
      if (context.isSettled()) return this.awaitSettlement(context);
      if (!failure) {
        // A transaction that cannot be committed (cross-slot keys, an emit that cannot be routed) fails the attempt.
        const prepared = await this.prepareWrites(entry, context);
        if (!('error' in prepared)) return this.complete(entry, streamPattern, message, context, options, prepared.writes);
        failure = { error: prepared.error };
      }
      if (options.inlineAttempts === undefined) return this.settler.fail(entry, streamPattern, failure.error);
      // Ordered topics retry in place: the message's key (or partition) waits, nothing behind it overtakes it.
      this.metrics.failed++;
      if (attempt >= options.inlineAttempts) return this.settler.deadLetter(entry, streamPattern, 'max-deliveries', failure.error, attempt);
      const delay = backoffDelayMs(this.config.retry.backoff, attempt);
      this.metrics.retried++;
      this.logger.warn(
        `Handler failed (attempt ${attempt} of ${options.inlineAttempts}), retrying in ${delay} ms while its key waits: ` +
          `${errorText(failure.error)} ${logIds({ stream: entry.stream, id: entry.id })}`,
      );
      await sleep(delay);
      if (options.stillOwned && !options.stillOwned()) return; // the partition moved: the new owner retries
      context = this.contextFor(entry, message, true, attempt + 1, options.partition);
    }
  }

  /**
   * A handler succeeded: mark it handled for causal dependants, then acknowledge; with exactly-once or a
   * transaction, through the commit script (writes + processed record + XACK in one step, fenced by the lease).
   */
  private async prepareWrites(entry: DeliveredEntry, context: RedisStreamsContext): Promise<{ writes: CommitRequest['writes'] } | { error: unknown }> {
    const tx = context.pendingTransaction();
    if (!tx || tx.isEmpty) return { writes: [] };
    try {
      return { writes: await this.resolveWrites(entry, tx) };
    } catch (error) {
      return { error };
    }
  }

  private async complete(
    entry: DeliveredEntry,
    streamPattern: string,
    message: DecodedMessage,
    context: RedisStreamsContext,
    options: ProcessOptions,
    writes: CommitRequest['writes'],
  ): Promise<void> {
    if (this.config.ordering.enabled && this.config.ordering.strategy === 'causal') {
      await this.markHandled(message);
    }
    const exactlyOnce = this.config.exactlyOnce.enabled;
    if (!exactlyOnce && writes.length === 0) return this.settler.ack(entry, streamPattern, options.stillOwned);
    const request = {
      lease: options.lease,
      processedKey: exactlyOnce ? this.keys.processedOf(entry.stream, this.config.consumer.group, this.dedupeKeyOf(message)) : undefined,
      writes,
    };
    if (options.stillOwned) await this.settler.commitUntilDone(entry, request, options.stillOwned);
    else await this.settler.commit(entry, request);
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
    for (const emit of tx.emits) {
      const route = this.partitioning?.enabled
        ? await this.partitioning.route(emit.pattern, emit.data, { partitionKey: emit.options.partitionKey, idempotencyKey: emit.options.idempotencyKey })
        : undefined;
      const fields = encodeMessage({
        pattern: emit.pattern,
        messageId: emit.options.messageId ?? randomUUID(),
        json: serializePayload(emit.data),
        headers: emit.options.headers,
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

  /**
   * Runs the event handler of an entry again for a replay: no ack, no retry, no claim; the context says isReplay().
   * Requests are not replayed (nobody waits for their answers).
   */
  async replay(entry: DeliveredEntry, streamPattern: string): Promise<'handled' | 'failed' | 'skipped' | { invalid: string }> {
    const claimed = await fetchClaimChecked(this.redis, this.keys, entry, this.config.streams.maxPayloadBytes);
    if ('invalid' in claimed) return { invalid: errorText(claimed.invalid) };
    if ('unavailable' in claimed) return { invalid: errorText(claimed.unavailable) };
    let message: DecodedMessage;
    try {
      message = decodeMessage(entry.id, claimed.fields, streamPattern, this.config.streams.maxPayloadBytes);
    } catch (error) {
      return { invalid: errorText(error) };
    }
    const handler = this.host.getHandlerByPattern(message.pattern);
    if (!handler || !handler.isEventHandler) return 'skipped';
    if ((message.schema !== undefined && this.schemas) || handler.extras?.schema !== undefined) {
      // Replays get the same validation and mapping as live deliveries; a message that would be dead-lettered is reported.
      const checked = await this.checkSchema(message, handler);
      if ('deadLetter' in checked) return { invalid: errorText(checked.deadLetter) };
      if ('retry' in checked) return { invalid: errorText(checked.retry) };
      message = checked.message;
    }
    const context = new RedisStreamsContext(
      [entry.stream, entry.id, this.config.consumer.group, this.config.consumer.consumerName, entry.deliveryCount, message.headers, message.pattern, message.messageId],
      undefined,
      true,
    );
    try {
      const result: unknown = await handler(message.data, context);
      if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
      return 'handled';
    } catch (error) {
      this.logger.warn(`Replayed handler failed: ${errorText(error)} ${logIds({ stream: entry.stream, id: entry.id })}`);
      return 'failed';
    }
  }

  /**
   * Validates a payload against the schema version it was written with (`<type>@<version>`) and maps it to the
   * version / DTO its handler asks for (`@StreamEvent(pattern, { schema: { version, type } })`; see SchemaReader).
   * Returns the message to hand over, or the error to dead-letter it with (strict mode, or malformed handler options);
   * in warn mode a failure is logged and counted and the message is handled.
   */
  private async checkSchema(message: DecodedMessage, handler: MessageHandler): Promise<{ message: DecodedMessage } | { deadLetter: Error } | { retry: unknown }> {
    const reader = handlerSchemaOf(handler.extras);
    if (reader instanceof Error) return { deadLetter: reader };
    let read: IncomingRead;
    try {
      read = this.schemas
        ? await this.schemas.readIncoming(message.pattern, message.schema, message.data, reader)
        : { data: toHandlerInstance(message.data, reader), invalid: false }; // schema.enabled off: only the DTO instance
    } catch (error) {
      // The registry did not answer: a transient failure, retried like a failed handler (never dead-lettered at once).
      return { retry: error };
    }
    if (read.invalid) this.metrics.schemaInvalid++;
    if (read.rejection) return { deadLetter: read.rejection };
    return { message: read.data === message.data ? message : { ...message, data: read.data } };
  }

  /** The handler settled its message itself; wait for that, so close() and the slot count cover it. */
  private async awaitSettlement(context: RedisStreamsContext): Promise<void> {
    await context.ack().catch(() => undefined);
  }

  // MessageControls: what RedisStreamsContext.ack/nack/deadLetter/working do.

  ack(context: RedisStreamsContext): Promise<void> {
    return this.settler.ack(this.entryOf(context), this.patternOf(context));
  }

  nack(context: RedisStreamsContext, delayMs: number | undefined): Promise<void> {
    return this.settler.fail(this.entryOf(context), this.patternOf(context), new Error('nacked by the handler'), delayMs);
  }

  deadLetter(context: RedisStreamsContext, reason: string): Promise<void> {
    const error = Object.assign(new Error(reason), { name: 'RejectedByHandler' });
    return this.settler.deadLetter(this.entryOf(context), this.patternOf(context), 'rejected', error);
  }

  working(context: RedisStreamsContext): Promise<boolean> {
    return this.settler.extendClaim(this.entryOf(context));
  }

  private entryOf(context: RedisStreamsContext): DeliveredEntry {
    return { stream: context.getStream(), id: context.getEntryId(), fields: {}, deliveryCount: context.getDeliveryCount() };
  }

  private patternOf(context: RedisStreamsContext): string {
    return this.streamPatterns.get(context.getStream()) ?? '';
  }

  private async processRequest(
    entry: DeliveredEntry,
    message: DecodedMessage,
    handler: MessageHandler,
    context: RedisStreamsContext,
    replyTo: string,
  ): Promise<void> {
    const started = performance.now();
    const send = (reply: ReplyMessage) =>
      this.redis.rseSendReply(
        replyTo,
        this.config.client.replyStreamMaxLen,
        this.config.client.replyStreamTtlMs,
        ...encodeReply(reply),
      );
    try {
      await this.host.withProcessingHooks(context, () =>
        this.withTimeout(message.pattern, async () => {
          let failure: unknown;
          let sent = Promise.resolve<unknown>(undefined);
          let previous: { value: unknown } | undefined;
          try {
            const result = await handler(message.data, context);
            const stream$: Observable<unknown> = isObservable(result) ? result : of(result);
            await new Promise<void>((resolve) => {
              stream$.subscribe({
                next: (value) => {
                  if (previous) {
                    const value0 = previous.value;
                    sent = sent.then(() => send({ requestId: message.messageId, response: value0, done: false }));
                  }
                  previous = { value };
                },
                error: (error: unknown) => {
                  failure = error;
                  resolve();
                },
                complete: () => resolve(),
              });
            });
          } catch (error) {
            failure = error;
          }
          if (failure !== undefined) {
            this.metrics.failed++;
            if (previous) {
              const last = previous.value;
              sent = sent.then(() => send({ requestId: message.messageId, response: last, done: false }));
            }
            const wireError = this.replyError(failure, entry);
            sent = sent.then(() => send({ requestId: message.messageId, err: wireError, done: true }));
          } else {
            sent = sent.then(() => send({ requestId: message.messageId, response: previous?.value, done: true }));
          }
          await sent;
        }),
      );
    } catch (error) {
      // Replying failed (Redis unreachable) or the handler timed out: leave the entry pending for a retry.
      this.metrics.recordLatency(performance.now() - started);
      this.metrics.failed++;
      this.logger.warn(`Request not answered, left pending: ${errorText(error)} ${logIds({ stream: entry.stream, id: entry.id })}`);
      return;
    }
    this.metrics.recordLatency(performance.now() - started);
    await this.settler.ack(entry, this.patternOf(context));
  }

  /**
   * What a caller learns of a failed request: an RpcException's payload, or Nest's own sanitized error object;
   * any other error (seen unchanged through RedisStreamsExceptionFilter) is logged here and replied as
   * "Internal server error", so internals never leak to callers.
   */
  private replyError(failure: unknown, entry: DeliveredEntry): WireError {
    if (failure instanceof RpcException || !(failure instanceof Error)) return toWireError(failure);
    this.logger.error(`Request handler failed: ${errorText(failure)} ${logIds({ stream: entry.stream, id: entry.id })}`, failure.stack);
    return { name: 'Error', message: 'Internal server error', status: 'error' };
  }

  private withTimeout(pattern: string, work: () => Promise<void>): Promise<void> {
    const timeoutMs = this.config.consumer.handlerTimeoutMs;
    if (timeoutMs <= 0) return work();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HandlerTimeoutError(pattern, timeoutMs)), timeoutMs);
      timer.unref();
    });
    return Promise.race([work(), timeout]).finally(() => clearTimeout(timer));
  }
}
