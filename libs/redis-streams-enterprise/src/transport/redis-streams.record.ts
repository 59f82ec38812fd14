import type { MessageHeaders } from './envelope.js';

/**
 * A payload with transport options, for `client.emit(pattern, record)` / `client.send(pattern, record)`:
 *
 * ```ts
 * client.emit('orders.created', new RedisStreamsRecordBuilder(order).setHeaders({ tenant: 'acme' }).setMessageId(order.id).build());
 * ```
 */
export class RedisStreamsRecord<T = unknown> {
  constructor(
    readonly data: T,
    readonly options: { readonly headers?: MessageHeaders; readonly messageId?: string } = {},
  ) {}
}

/** Builds a `RedisStreamsRecord` step by step (mirrors Nest's `RmqRecordBuilder`). */
export class RedisStreamsRecordBuilder<T = unknown> {
  private headers?: Record<string, string>;
  private messageId?: string;

  constructor(private data?: T) {}

  setData(data: T): this {
    this.data = data;
    return this;
  }

  /** String headers delivered to `ctx.getHeaders()`; names of A-Z a-z 0-9 . _ - (at most 64). */
  setHeaders(headers: Record<string, string>): this {
    this.headers = { ...this.headers, ...headers };
    return this;
  }

  /** Message id seen by handlers as `ctx.getMessageId()` (default: a random UUID). */
  setMessageId(messageId: string): this {
    this.messageId = messageId;
    return this;
  }

  build(): RedisStreamsRecord<T> {
    return new RedisStreamsRecord(this.data as T, { headers: this.headers, messageId: this.messageId });
  }
}
