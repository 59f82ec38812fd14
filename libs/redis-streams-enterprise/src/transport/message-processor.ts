/**
 * The orchestrator of one delivered entry (decode, route, check its schema, run it, pick the outcome). Beside it:
 * RequestResponder answers requests, EventCommitter makes a handled event durable, Settler carries out outcomes.
 */
import { Logger } from '@nestjs/common';
import type { MessageHandler } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import type { EntryProcessor, ProcessOptions } from '../consumer/entry-processor.js';
import { NoHandlerError } from '../errors/no-handler.error.js';
import type { TransportMetrics } from '../observability/metrics.js';
import type { ProcessInfo } from '../observability/telemetry.js';
import { errorText, logFields, logIds } from '../observability/log-format.js';
import { decodeMessage, type DecodedMessage } from '../wire/envelope.js';
import { StreamKeys } from '../connection/stream-keys.js';
import type { PartitioningManager } from '../partitioning/partitioning.manager.js';
import { CausalTimeoutError } from '../errors/causal-timeout.error.js';
import { InvalidReplyAddressError } from '../errors/invalid-reply-address.error.js';
import { NackedByHandlerError, RejectedByHandlerError } from '../errors/rejected-by-handler.error.js';
import { decideAfterFailure } from './settlement-policy.js';
import { withHandlerTimeout } from './handler-timeout.js';
import { fetchClaimChecked } from '../claim-check/claim-check.js';
import { EventCommitter } from './event-committer.js';
import { RedisStreamsContext, type MessageControls } from './redis-streams.context.js';
import { RequestResponder } from './request-responder.js';
import type { Settler } from './settler.js';
import type { SchemaManager } from '../schema/schema.manager.js';
import { handlerSchemaOf, toHandlerInstance } from '../schema/handler-schema.js';
import type { IncomingRead } from '../schema/schema-reader.js';
import { sleep } from '../runtime/sleeper.js';
import { PayloadCodec } from '../payload-codec/payload-codec.js';
import { DecryptFailedError } from '../errors/decrypt-failed.error.js';
import { CodecUnavailableError } from '../errors/codec-unavailable.error.js';

const NO_OPTIONS: ProcessOptions = Object.freeze({});
const RETRY_IN_PLACE_MS = 250; // before an ordered entry's step that could not be done now is tried again
const NOT_NOW_LOG_EVERY = 40; // tries (10 s) between warnings while it waits

/** What the processor needs from the server: handler lookup and Nest's processing hooks. */
export interface HandlerHost {
  getHandlerByPattern(pattern: string): MessageHandler | null;
  /** Runs `fn` between Nest's processing start and end hooks (tracing). */
  withProcessingHooks(context: RedisStreamsContext, fn: () => Promise<void>): Promise<void>;
}

/**
 * One delivered entry from start to settlement: decode -> handler -> ack, or a retry / dead letter after a failure.
 * Requests reply before the ack; their failures are replied as errors, not retried (the caller waits).
 */
export class MessageProcessor implements MessageControls, EntryProcessor {
  private readonly logger = new Logger('RedisStreamsServer');
  private readonly streamPatterns = new Map<string, string>();
  private readonly keys: StreamKeys;
  private readonly committer: EventCommitter;
  private readonly requests: RequestResponder;

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly redis: ScriptedRedis,
    private readonly settler: Settler,
    private readonly metrics: TransportMetrics,
    private readonly host: HandlerHost,
    private readonly schemas?: SchemaManager,
    private readonly codec = new PayloadCodec(config),
  ) {
    this.keys = new StreamKeys(config.streams.keyPrefix);
    this.committer = new EventCommitter(config, redis, this.keys, settler, codec);
    this.requests = new RequestResponder(config, redis, metrics, (context, pattern, work) => this.guarded(context, pattern, work), codec);
    this.committer.tracer = metrics.tracer;
  }

  /** Routes transactional emits to partitioned topics. */
  usePartitioning(partitioning: PartitioningManager): void {
    this.committer.usePartitioning(partitioning);
  }

  /** Registers the pattern a stream belongs to (default pattern of entries that carry none). */
  addStream(stream: string, pattern: string): void {
    this.streamPatterns.set(stream, pattern);
  }

  /** Processes one entry. Never rejects: every outcome is settled in Redis or left pending for the reclaimer. */
  async process(entry: DeliveredEntry, options: ProcessOptions = NO_OPTIONS): Promise<void> {
    this.metrics.received++;
    this.metrics.labelled?.count('received', entry.stream);
    for (let waited = 0; ; waited++) {
      const outcome = await this.processOnce(entry, options);
      if (!outcome) return;
      // A step before the handler could not be done now (schema registry, claim-checked payload unreachable). On an
      // ordered partition (no reclaimer there) it is tried again in place while ours: the key waits. Scheduled as a
      // retry, the soak found it pending for good while later entries of its key were handled.
      if (options.inlineAttempts === undefined) return this.settler.fail(entry, outcome.notNow);
      if (waited % NOT_NOW_LOG_EVERY === 0) {
        this.logger.warn(`Cannot process now, trying again while its key waits: ${errorText(outcome.notNow)} ${logIds({ stream: entry.stream, id: entry.id })}`);
      }
      await sleep(RETRY_IN_PLACE_MS);
      if (options.stillOwned && !(await options.stillOwned())) return; // the next owner's takeover claims it in order
    }
  }

  private async processOnce(entry: DeliveredEntry, options: ProcessOptions): Promise<{ notNow: unknown } | void> {
    const streamPattern = this.streamPatterns.get(entry.stream) ?? '';
    const onlyFor = entry.fields['rse.redrive.group'];
    if (onlyFor !== undefined && onlyFor !== this.config.consumer.group) {
      // A dead letter redriven for another group: this group processed the message already.
      return this.settler.ack(entry);
    }
    let fields = entry.fields;
    if (fields.blob !== undefined && fields.data === undefined) {
      // A claim-checked payload (large message) is fetched first; a blob that is gone can never be decoded.
      const claimed = await fetchClaimChecked(this.redis, this.keys, entry, this.config.streams.maxPayloadBytes);
      if ('invalid' in claimed) return this.settler.deadLetter(entry, 'decode-failed', claimed.invalid);
      if ('unavailable' in claimed) return { notNow: claimed.unavailable };
      fields = claimed.fields;
    }
    let message: DecodedMessage;
    try {
      message = await this.decode(entry, fields, streamPattern);
    } catch (error) {
      return this.settler.deadLetter(entry, deadLetterReasonOf(error), error);
    }
    const handler = this.host.getHandlerByPattern(message.pattern);
    if (!handler) {
      return this.settler.deadLetter(entry, 'no-handler', new NoHandlerError(message.pattern));
    }
    if (this.schemas || handler.extras?.schema !== undefined) {
      const checked = await this.checkSchema(message, handler);
      if ('deadLetter' in checked) return this.settler.deadLetter(entry, 'schema-invalid', checked.deadLetter);
      if ('retry' in checked) return { notNow: checked.retry };
      message = checked.message;
    }
    if (options.causalTimedOut && this.config.ordering.causalTimeoutPolicy === 'deadLetter') {
      return this.settler.deadLetter(entry, 'causal-timeout', new CausalTimeoutError(message.dependsOn ?? [], this.config.ordering.timeoutMs));
    }
    const isEvent = handler.isEventHandler || !message.replyTo;
    if (!isEvent && message.replyTo !== undefined && !this.keys.isReplyStream(message.replyTo)) {
      // replyTo comes from the message: a forged one must never make this consumer write outside its reply streams.
      return this.settler.deadLetter(entry, 'invalid-reply-to', new InvalidReplyAddressError(message.replyTo, this.keys.replyStream('<id>')));
    }
    if (isEvent && this.config.exactlyOnce.enabled && (await this.committer.processedAlready(entry, message))) {
      this.metrics.duplicatesSkipped++;
      this.metrics.labelled?.count('duplicates_skipped', entry.stream);
      return this.settler.ack(entry);
    }
    const context = this.contextFor(entry, message, isEvent, entry.deliveryCount, options.partition);
    // Tracing: a CONSUMER span, child of the producer's, around the handler and the settlement of its outcome.
    const span = this.metrics.tracer?.startProcess(this.spanInfo(entry, message, options.partition, !isEvent), message.headers);
    if (!span) return this.dispatch(entry, message, handler, context, options, isEvent);
    return span.run(() => this.dispatch(entry, message, handler, context, options, isEvent)).finally(() => span.end());
  }

  private async dispatch(
    entry: DeliveredEntry,
    message: DecodedMessage,
    handler: MessageHandler,
    context: RedisStreamsContext,
    options: ProcessOptions,
    isEvent: boolean,
  ): Promise<void> {
    if (isEvent || message.replyTo === undefined) {
      await this.processEvent(entry, message, handler, context, options);
    } else if (await this.requests.answer(entry, message, handler, context, message.replyTo)) {
      // Acknowledged only once the final reply is in the reply stream; otherwise it stays pending for a retry.
      await this.settler.ack(entry);
    }
  }

  private spanInfo(entry: DeliveredEntry, message: DecodedMessage, partition: number | undefined, isRequest: boolean, isReplay = false): ProcessInfo {
    const { group, consumerName } = this.config.consumer;
    const { stream, id, deliveryCount, fields } = entry;
    const copiedBy = fields['rse.replay.from'] !== undefined ? 'replay' : fields['rse.redrive.from'] !== undefined ? 'redrive' : undefined;
    return { stream, pattern: message.pattern, group, consumer: consumerName, entryId: id, messageId: message.messageId, deliveryCount, partition, isRequest, isReplay, copiedBy };
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

  private async processEvent(
    entry: DeliveredEntry,
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
        await this.guarded(context, message.pattern, async () => {
          const result: unknown = await handler(message.data, context);
          if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
        });
      } catch (error) {
        failure = { error };
      }
      this.metrics.recordLatency(performance.now() - started, entry.stream);
      if (!failure) this.metrics.labelled?.handled(entry.stream, entry.id);
      if (context.isSettled()) return this.awaitSettlement(context);
      if (!failure) {
        // A transaction that cannot be committed (cross-slot keys, an emit that cannot be routed) fails the attempt.
        const prepared = await this.committer.prepareWrites(entry, context);
        if (!('error' in prepared)) return this.committer.complete(entry, message, options, prepared.writes);
        failure = { error: prepared.error };
      }
      if (options.inlineAttempts === undefined) return this.settler.fail(entry, failure.error);
      // Ordered topics retry in place: the message's key (or partition) waits, nothing behind it overtakes it.
      this.metrics.failed++;
      this.metrics.labelled?.count('failed', entry.stream);
      this.metrics.tracer?.fail(failure.error);
      const decision = decideAfterFailure({ attempt, maxAttempts: options.inlineAttempts, inPlace: true, backoff: this.config.retry.backoff });
      if (decision.action === 'dead-letter') return this.settler.deadLetter(entry, decision.reason, failure.error, decision.attempts);
      const delay = decision.delayMs;
      this.metrics.retried++;
      this.metrics.labelled?.count('retried', entry.stream);
      this.metrics.tracer?.event('retry in place', { 'messaging.redis_streams.attempt': attempt, 'messaging.redis_streams.retry_delay_ms': delay });
      this.logger.warn(
        `Handler failed (attempt ${attempt} of ${options.inlineAttempts}), retrying in ${delay} ms while its key waits: ` +
          `${errorText(failure.error)} ${logIds({ stream: entry.stream, id: entry.id })}`,
        logFields({ stream: entry.stream, group: this.config.consumer.group, id: entry.id, messageId: message.messageId, pattern: message.pattern, reason: 'retry-in-place', error: failure.error }),
      );
      await sleep(delay);
      if (options.stillOwned && !(await options.stillOwned())) return; // the partition moved: the new owner retries
      context = this.contextFor(entry, message, true, attempt + 1, options.partition);
    }
  }

  /** Runs an entry's event handler again for a replay (no ack, retry or claim; isReplay()); requests are not replayed. */
  async replay(entry: DeliveredEntry, streamPattern: string): Promise<'handled' | 'failed' | 'skipped' | { invalid: string }> {
    const claimed = await fetchClaimChecked(this.redis, this.keys, entry, this.config.streams.maxPayloadBytes);
    if ('invalid' in claimed) return { invalid: errorText(claimed.invalid) };
    if ('unavailable' in claimed) return { invalid: errorText(claimed.unavailable) };
    let message: DecodedMessage;
    try {
      message = await this.decode(entry, claimed.fields, streamPattern);
    } catch (error) {
      return { invalid: errorText(error) };
    }
    const handler = this.host.getHandlerByPattern(message.pattern);
    if (!handler || !handler.isEventHandler) return 'skipped';
    if (this.schemas || handler.extras?.schema !== undefined) {
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
    // Tracing: a replay is not caused by the original publish, so its span links to that trace instead of joining it.
    const tracer = this.metrics.tracer;
    const span = tracer?.startProcess(this.spanInfo(entry, message, undefined, false, true), message.headers);
    const run = async () => {
      const result: unknown = await handler(message.data, context);
      if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
    };
    const traced = async () => {
      await run().catch((error: unknown) => {
        tracer?.fail(error);
        throw error;
      });
    };
    try {
      await (span && tracer ? span.run(() => tracer.unsuppressed(traced)) : run());
      return 'handled';
    } catch (error) {
      this.logger.warn(
        `Replayed handler failed: ${errorText(error)} ${logIds({ stream: entry.stream, id: entry.id })}`,
        logFields({ stream: entry.stream, id: entry.id, messageId: message.messageId, pattern: message.pattern, reason: 'replay-failed', error }),
      );
      return 'failed';
    } finally {
      span?.end();
    }
  }

  /**
   * Validates a payload against the schema version it was written with (`<type>@<version>`; unstamped: the latest of
   * its pattern, so leaving the stamp off does not skip validation) and maps it to the
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
    if (read.invalid) {
      this.metrics.schemaInvalid++;
      this.metrics.labelled?.countPattern('schema_invalid', message.pattern);
    }
    if (read.rejection) return { deadLetter: read.rejection };
    return { message: read.data === message.data ? message : { ...message, data: read.data } };
  }

  /** Undoes the payload's codecs (decryption, decompression), then decodes the message. */
  private async decode(entry: DeliveredEntry, fields: Record<string, string>, streamPattern: string): Promise<DecodedMessage> {
    const plain = await this.codec.decode(fields, streamPattern, entry.id);
    return decodeMessage(entry.id, plain, streamPattern, this.config.streams.maxPayloadBytes);
  }

  /** The handler settled its message itself; wait for that, so close() and the slot count cover it. */
  private async awaitSettlement(context: RedisStreamsContext): Promise<void> {
    await context.ack().catch(() => undefined);
  }

  // MessageControls: what RedisStreamsContext.ack/nack/deadLetter/working do.

  ack(context: RedisStreamsContext): Promise<void> {
    return this.settler.ack(this.entryOf(context));
  }

  nack(context: RedisStreamsContext, delayMs: number | undefined): Promise<void> {
    return this.settler.fail(this.entryOf(context), new NackedByHandlerError(context.getPattern()), delayMs);
  }

  deadLetter(context: RedisStreamsContext, reason: string): Promise<void> {
    return this.settler.deadLetter(this.entryOf(context), 'rejected', new RejectedByHandlerError(reason));
  }

  working(context: RedisStreamsContext): Promise<boolean> {
    return this.settler.extendClaim(this.entryOf(context));
  }

  private entryOf(context: RedisStreamsContext): DeliveredEntry {
    return { stream: context.getStream(), id: context.getEntryId(), fields: {}, deliveryCount: context.getDeliveryCount() };
  }

  /** Runs a handler's work inside Nest's processing hooks (tracing) and bounded by consumer.handlerTimeoutMs. */
  private guarded(context: RedisStreamsContext, pattern: string, work: () => Promise<void>): Promise<void> {
    const tracer = this.metrics.tracer;
    // Tracing: the handler and Nest's processing hooks run in the process span with tracing no longer suppressed.
    const bounded = () => withHandlerTimeout(pattern, this.config.consumer.handlerTimeoutMs, work);
    if (tracer) return tracer.unsuppressed(() => this.host.withProcessingHooks(context, bounded));
    return this.host.withProcessingHooks(context, bounded);
  }
}

/** The dead-letter reason of a message that could not be decoded. */
function deadLetterReasonOf(error: unknown): 'decrypt-failed' | 'codec-unavailable' | 'decode-failed' {
  if (error instanceof DecryptFailedError) return 'decrypt-failed';
  return error instanceof CodecUnavailableError ? 'codec-unavailable' : 'decode-failed';
}
