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
import { decodeMessage, encodeReply, toWireError, type DecodedMessage, type ReplyMessage, type WireError } from './envelope.js';
import { RedisStreamsContext, type MessageControls } from './redis-streams.context.js';
import type { Settler } from './settler.js';
import type { SchemaManager } from '../schema/schema.manager.js';
import { SchemaValidationError, type SchemaIssue } from '../errors/schema-validation.error.js';

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

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly redis: ScriptedRedis,
    private readonly settler: Settler,
    private readonly metrics: TransportMetrics,
    private readonly host: HandlerHost,
    private readonly schemas?: SchemaManager,
  ) {}

  /** Registers the pattern a stream belongs to (default pattern of entries that carry none). */
  addStream(stream: string, pattern: string): void {
    this.streamPatterns.set(stream, pattern);
  }

  /** Processes one entry. Never rejects: every outcome is settled in Redis or left pending for the reclaimer. */
  async process(entry: DeliveredEntry): Promise<void> {
    this.metrics.received++;
    const streamPattern = this.streamPatterns.get(entry.stream) ?? '';
    const onlyFor = entry.fields['rse.redrive.group'];
    if (onlyFor !== undefined && onlyFor !== this.config.consumer.group) {
      // A dead letter redriven for another group: this group processed the message already.
      return this.settler.ack(entry, streamPattern);
    }
    let message: DecodedMessage;
    try {
      message = decodeMessage(entry.id, entry.fields, streamPattern, this.config.streams.maxPayloadBytes);
    } catch (error) {
      return this.settler.deadLetter(entry, streamPattern, 'decode-failed', error);
    }
    if (message.schema !== undefined && this.schemas) {
      const invalid = await this.checkSchema(message.schema, message.data);
      if (invalid) return this.settler.deadLetter(entry, streamPattern, 'schema-invalid', invalid);
    }
    const handler = this.host.getHandlerByPattern(message.pattern);
    if (!handler) {
      return this.settler.deadLetter(entry, streamPattern, 'no-handler', new NoHandlerError(message.pattern));
    }
    const isEvent = handler.isEventHandler || !message.replyTo;
    const context = new RedisStreamsContext(
      [
      entry.stream,
      entry.id,
      this.config.consumer.group,
      this.config.consumer.consumerName,
      entry.deliveryCount,
      message.headers,
      message.pattern,
      message.messageId,
      ],
      isEvent ? this : undefined,
    );
    if (isEvent || message.replyTo === undefined) {
      await this.processEvent(entry, streamPattern, message, handler, context);
    } else {
      await this.processRequest(entry, message, handler, context, message.replyTo);
    }
  }

  private async processEvent(
    entry: DeliveredEntry,
    streamPattern: string,
    message: DecodedMessage,
    handler: MessageHandler,
    context: RedisStreamsContext,
  ): Promise<void> {
    const started = performance.now();
    try {
      await this.host.withProcessingHooks(context, () =>
        this.withTimeout(message.pattern, async () => {
          const result: unknown = await handler(message.data, context);
          if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
        }),
      );
    } catch (error) {
      this.metrics.recordLatency(performance.now() - started);
      if (context.isSettled()) return this.awaitSettlement(context);
      return this.settler.fail(entry, streamPattern, error);
    }
    this.metrics.recordLatency(performance.now() - started);
    if (context.isSettled()) return this.awaitSettlement(context);
    await this.settler.ack(entry, streamPattern);
  }

  /**
   * Runs the event handler of an entry again for a replay: no ack, no retry, no claim; the context says isReplay().
   * Requests are not replayed (nobody waits for their answers).
   */
  async replay(entry: DeliveredEntry, streamPattern: string): Promise<'handled' | 'failed' | 'skipped' | { invalid: string }> {
    let message: DecodedMessage;
    try {
      message = decodeMessage(entry.id, entry.fields, streamPattern, this.config.streams.maxPayloadBytes);
    } catch (error) {
      return { invalid: errorText(error) };
    }
    const handler = this.host.getHandlerByPattern(message.pattern);
    if (!handler || !handler.isEventHandler) return 'skipped';
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
   * Validates a payload against the schema version it was written with (`<type>@<version>`). Returns the error to
   * dead-letter it with in strict mode; in warn mode logs and counts, and the message is handled.
   */
  private async checkSchema(stamp: string, data: unknown): Promise<Error | undefined> {
    const schemas = this.schemas;
    const mode = this.config.schema.validationMode;
    if (!schemas || mode === 'ignore') return undefined;
    const at = stamp.lastIndexOf('@');
    const eventType = stamp.slice(0, at);
    const version = stamp.slice(at + 1);
    let issues: SchemaIssue[];
    try {
      issues = (await schemas.validate(eventType, data, version)).issues;
    } catch (error) {
      // The version is unknown (deleted or pruned): in strict mode the message cannot be trusted.
      return mode === 'strict' ? (error as Error) : undefined;
    }
    if (issues.length === 0) return undefined;
    this.metrics.schemaInvalid++;
    if (mode === 'strict') return new SchemaValidationError(eventType, version, issues);
    this.logger.warn(`Message does not match schema ${stamp} (handled anyway, schema.validationMode warn): ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`);
    return undefined;
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
