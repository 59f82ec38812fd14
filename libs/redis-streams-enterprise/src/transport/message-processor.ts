import { Logger } from '@nestjs/common';
import { RpcException, type MessageHandler } from '@nestjs/microservices';
import { isObservable, lastValueFrom, of, type Observable } from 'rxjs';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import { HandlerTimeoutError } from '../errors/handler-timeout.error.js';
import { NoHandlerError } from '../errors/no-handler.error.js';
import { MessageDecodeError } from '../errors/message-decode.error.js';
import type { TransportMetrics } from '../observability/metrics.js';
import { errorText, logIds } from '../observability/log-format.js';
import type { AckBatcher } from './ack-batcher.js';
import { backoffDelayMs } from './backoff.js';
import { decodeMessage, encodeReply, toWireError, type DecodedMessage, type ReplyMessage, type WireError } from './envelope.js';
import { RedisStreamsContext } from './redis-streams.context.js';

/** What the processor needs from the server: handler lookup and Nest's processing hooks. */
export interface HandlerHost {
  getHandlerByPattern(pattern: string): MessageHandler | null;
  /** Runs `fn` between Nest's processing start and end hooks (tracing). */
  withProcessingHooks(context: RedisStreamsContext, fn: () => Promise<void>): Promise<void>;
}

/** Why a message was dead-lettered (stored in the dead-letter entry as `rse.dlq.reason`). */
export type DeadLetterReason = 'max-deliveries' | 'decode-failed' | 'no-handler';

/**
 * Handles one delivered entry from start to settlement:
 *   decode -> find handler -> run it -> ack on success,
 *   or on failure schedule a retry (the entry stays pending) or, after the last attempt, dead-letter it.
 * Requests (`@MessagePattern`) reply to the requester's reply stream before the ack; their failures are
 * replied as errors, not retried (the caller is waiting and has its own timeout).
 */
export class MessageProcessor {
  private readonly logger = new Logger('RedisStreamsServer');
  private readonly streamPatterns = new Map<string, string>();

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly redis: ScriptedRedis,
    private readonly keys: StreamKeys,
    private readonly acks: AckBatcher,
    private readonly metrics: TransportMetrics,
    private readonly host: HandlerHost,
  ) {}

  /** Registers the pattern a stream belongs to (default pattern of entries that carry none). */
  addStream(stream: string, pattern: string): void {
    this.streamPatterns.set(stream, pattern);
  }

  /** Processes one entry. Never rejects: every outcome is settled in Redis or left pending for the reclaimer. */
  async process(entry: DeliveredEntry): Promise<void> {
    this.metrics.received++;
    const streamPattern = this.streamPatterns.get(entry.stream) ?? '';
    let message: DecodedMessage;
    try {
      message = decodeMessage(entry.id, entry.fields, streamPattern, this.config.streams.maxPayloadBytes);
    } catch (error) {
      return this.deadLetter(entry, streamPattern, 'decode-failed', error);
    }
    const handler = this.host.getHandlerByPattern(message.pattern);
    if (!handler) {
      return this.deadLetter(entry, streamPattern, 'no-handler', new NoHandlerError(message.pattern));
    }
    const context = new RedisStreamsContext([
      entry.stream,
      entry.id,
      this.config.consumer.group,
      this.config.consumer.consumerName,
      entry.deliveryCount,
      message.headers,
      message.pattern,
      message.messageId,
    ]);
    if (handler.isEventHandler || !message.replyTo) {
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
      return this.onHandlerFailure(entry, streamPattern, error);
    }
    this.metrics.recordLatency(performance.now() - started);
    await this.ack(entry);
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
    await this.ack(entry);
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

  private async ack(entry: DeliveredEntry): Promise<void> {
    try {
      await this.acks.ack(entry.stream, entry.id);
    } catch (error) {
      // The entry stays pending and is reclaimed later: it will be processed again (at-least-once).
      this.logger.warn(`Ack failed, entry will be redelivered: ${errorText(error)} ${logIds({ stream: entry.stream, id: entry.id })}`);
    }
  }

  private async onHandlerFailure(entry: DeliveredEntry, streamPattern: string, error: unknown): Promise<void> {
    this.metrics.failed++;
    const { attempts, backoff } = this.config.retry;
    if (entry.deliveryCount >= attempts) {
      return this.deadLetter(entry, streamPattern, 'max-deliveries', error);
    }
    const delayMs = backoffDelayMs(backoff, entry.deliveryCount);
    try {
      const scheduled = await this.redis.rseScheduleRetry(
        entry.stream,
        this.keys.retrySchedule(streamPattern, this.config.consumer.group),
        this.config.consumer.group,
        this.config.consumer.consumerName,
        entry.id,
        delayMs,
      );
      if (scheduled) this.metrics.retried++;
      this.logger.warn(
        `Handler failed (attempt ${entry.deliveryCount} of ${attempts}), retry in ${delayMs} ms: ${errorText(error)} ` +
          logIds({ stream: entry.stream, group: this.config.consumer.group, id: entry.id }),
      );
    } catch (scheduleError) {
      this.logger.warn(
        `Handler failed and the retry could not be scheduled; the entry stays pending and is reclaimed after ` +
          `consumer.claimIdleMs: ${errorText(scheduleError)} ${logIds({ stream: entry.stream, id: entry.id })}`,
      );
    }
  }

  private async deadLetter(entry: DeliveredEntry, streamPattern: string, reason: DeadLetterReason, error: unknown): Promise<void> {
    const { group } = this.config.consumer;
    const ids = logIds({ stream: entry.stream, group, id: entry.id });
    if (!this.config.deadLetter.enabled) {
      this.logger.error(`Message dropped (${reason}; dead-lettering is disabled): ${errorText(error)} ${ids}`);
      return this.ack(entry);
    }
    const err = error instanceof Error ? error : Object.assign(new Error(toWireError(error).message), { name: 'Error' });
    try {
      const dlqId = await this.redis.rseDeadLetter(
        entry.stream,
        this.keys.deadLetter(streamPattern),
        this.keys.retrySchedule(streamPattern, group),
        group,
        entry.id,
        this.config.deadLetter.maxLen,
        'rse.dlq.reason', reason,
        'rse.dlq.originalId', entry.id,
        'rse.dlq.stream', entry.stream,
        'rse.dlq.group', group,
        'rse.dlq.consumer', this.config.consumer.consumerName,
        'rse.dlq.errorName', err.name,
        'rse.dlq.errorMessage', err.message.slice(0, 2_000),
        'rse.dlq.errorCode', err instanceof MessageDecodeError || 'code' in err ? String((err as { code?: unknown }).code ?? '') : '',
        'rse.dlq.failedAt', String(Date.now()),
      );
      if (dlqId) {
        this.metrics.deadLettered++;
        this.logger.error(`Message dead-lettered (${reason}): ${errorText(error)} ${ids} dlqId=${String(dlqId)}`);
      }
    } catch (dlqError) {
      this.logger.error(
        `Dead-lettering failed; the entry stays pending and is retried after consumer.claimIdleMs: ${errorText(dlqError)} ${ids}`,
      );
    }
  }
}
