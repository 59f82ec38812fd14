import { BaseRpcContext } from '@nestjs/microservices';
import type { MessageHeaders } from './envelope.js';

type RedisStreamsContextArgs = [
  stream: string,
  entryId: string,
  group: string,
  consumer: string,
  deliveryCount: number,
  headers: MessageHeaders,
  pattern: string,
  messageId: string,
];

/**
 * What a handler can learn about the message it handles; inject it with `@Ctx()`.
 *
 * ```ts
 * @EventPattern('orders.created')
 * handle(@Payload() order: OrderDto, @Ctx() ctx: RedisStreamsContext) {
 *   if (ctx.getDeliveryCount() > 1) this.logger.warn(`retry of ${ctx.getMessageId()}`);
 * }
 * ```
 */
export class RedisStreamsContext extends BaseRpcContext<RedisStreamsContextArgs> {
  constructor(args: RedisStreamsContextArgs) {
    super(args);
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
}
