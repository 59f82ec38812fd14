/**
 * The request/reply side of a delivery (`@MessagePattern`): runs the handler, streams its values to the requester's
 * reply stream and turns a failure into a wire error. It lives apart from MessageProcessor because a request is
 * settled differently from an event: its failures are replied, not retried (the caller is waiting and has its own
 * timeout), and only a reply that could not be sent leaves the entry pending. The processor still decides the ack.
 */
import { Logger } from '@nestjs/common';
import { RpcException, type MessageHandler } from '@nestjs/microservices';
import { isObservable, of, type Observable } from 'rxjs';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { errorText, logFields, logIds, stackText } from '../observability/log-format.js';
import type { TransportMetrics } from '../observability/metrics.js';
import { encodeReply, toWireError, type DecodedMessage, type ReplyMessage, type WireError } from '../wire/envelope.js';
import type { RedisStreamsContext } from './redis-streams.context.js';
import type { PayloadCodec } from '../payload-codec/payload-codec.js';

/** Runs a handler's work inside Nest's processing hooks and the handler timeout (MessageProcessor's guard). */
export type GuardedRun = (context: RedisStreamsContext, pattern: string, work: () => Promise<void>) => Promise<void>;

export class RequestResponder {
  // Same context as the rest of the processing path, so users filter one logger for every delivery outcome.
  private readonly logger = new Logger('RedisStreamsServer');

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly redis: ScriptedRedis,
    private readonly metrics: TransportMetrics,
    private readonly guarded: GuardedRun,
    /** Seals replies when encryption is on: a reply stream holds ciphertext too. */
    private readonly codec: PayloadCodec,
  ) {}

  /**
   * Answers one request. Resolves true when the final reply (value or error) reached the reply stream, so the entry
   * may be acknowledged; false when it could not be sent or the handler timed out, so the entry stays pending for a
   * retry. Never rejects.
   */
  async answer(
    entry: DeliveredEntry,
    message: DecodedMessage,
    handler: MessageHandler,
    context: RedisStreamsContext,
    replyTo: string,
  ): Promise<boolean> {
    const started = performance.now();
    const send = async (reply: ReplyMessage) =>
      this.redis.rseSendReply(
        replyTo,
        this.config.client.replyStreamMaxLen,
        this.config.client.replyStreamTtlMs,
        ...(await this.codec.encodeReply(encodeReply(reply), replyTo)),
      );
    try {
      await this.guarded(context, message.pattern, () => this.runAndReply(entry, message, handler, context, send));
    } catch (error) {
      // Replying failed (Redis unreachable) or the handler timed out: leave the entry pending for a retry.
      this.metrics.recordLatency(performance.now() - started, entry.stream);
      this.metrics.failed++;
      this.metrics.labelled?.count('failed', entry.stream);
      this.metrics.tracer?.fail(error);
      this.logger.warn(
        `Request not answered, left pending: ${errorText(error)} ${logIds({ stream: entry.stream, id: entry.id })}`,
        logFields({ stream: entry.stream, id: entry.id, messageId: message.messageId, pattern: message.pattern, reason: 'request-not-answered', error }),
      );
      return false;
    }
    this.metrics.recordLatency(performance.now() - started, entry.stream);
    this.metrics.labelled?.handled(entry.stream, entry.id);
    return true;
  }

  /**
   * Runs the handler and sends its replies in order: each value of an Observable but the last as it comes (the
   * previous one is held back so that the last can be marked `done`), then the last value, or the error.
   */
  private async runAndReply(
    entry: DeliveredEntry,
    message: DecodedMessage,
    handler: MessageHandler,
    context: RedisStreamsContext,
    send: (reply: ReplyMessage) => Promise<unknown>,
  ): Promise<void> {
    const requestId = message.messageId;
    let failure: unknown;
    let sent = Promise.resolve<unknown>(undefined);
    let previous: { value: unknown } | undefined;
    const sendInTurn = (reply: ReplyMessage) => (sent = sent.then(() => send(reply)));
    try {
      const result = await handler(message.data, context);
      const stream$: Observable<unknown> = isObservable(result) ? result : of(result);
      await new Promise<void>((resolve) => {
        stream$.subscribe({
          next: (value) => {
            if (previous) sendInTurn({ requestId, response: previous.value, done: false });
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
    if (failure === undefined) {
      sendInTurn({ requestId, response: previous?.value, done: true });
    } else {
      this.metrics.failed++;
      this.metrics.labelled?.count('failed', entry.stream);
      this.metrics.tracer?.fail(failure);
      if (previous) sendInTurn({ requestId, response: previous.value, done: false });
      sendInTurn({ requestId, err: this.replyError(failure, entry), done: true });
    }
    await sent;
  }

  /**
   * What a caller learns of a failed request: an RpcException's payload, or Nest's own sanitized error object;
   * any other error (seen unchanged through RedisStreamsExceptionFilter) is logged here and replied as
   * "Internal server error", so internals never leak to callers.
   */
  private replyError(failure: unknown, entry: DeliveredEntry): WireError {
    if (failure instanceof RpcException || !(failure instanceof Error)) return toWireError(failure);
    // The stack's first line repeats the message, which may quote the request: escaped like the message.
    this.logger.error(`Request handler failed: ${errorText(failure)} ${logIds({ stream: entry.stream, id: entry.id })}`, stackText(failure));
    return { name: 'Error', message: 'Internal server error', status: 'error' };
  }
}
