import type { MessageHeaders } from '../wire/envelope.js';

/** Transport options of one message. */
export interface RedisStreamsRecordOptions {
  readonly headers?: MessageHeaders;
  readonly messageId?: string;
  /** Partition / ordering key (Kafka's message key): wins over `partitionKey` and `partitionKeyExtractor`. */
  readonly partitionKey?: string;
  /**
   * Idempotency key: a second publish with the same key within `exactlyOnce.windowMs` stores nothing and resolves
   * with the first entry id; with `exactlyOnce.enabled`, consumers also skip a key they processed already.
   */
  readonly idempotencyKey?: string;
  /** Idempotency keys (or message ids) of messages that must be handled before this one (`causal` ordering). */
  readonly dependsOn?: readonly string[];
}

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
    readonly options: RedisStreamsRecordOptions = {},
  ) {}
}

/** Builds a `RedisStreamsRecord` step by step (mirrors Nest's `RmqRecordBuilder`). */
export class RedisStreamsRecordBuilder<T = unknown> {
  private headers?: Record<string, string>;
  private messageId?: string;
  private partitionKey?: string;
  private idempotencyKey?: string;
  private dependsOn?: string[];

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

  /** Partition / ordering key: messages with one key go to one partition and are handled in order. */
  setPartitionKey(key: string): this {
    this.partitionKey = key;
    return this;
  }

  /** Idempotency key: publishing it again within `exactlyOnce.windowMs` adds nothing (see RedisStreamsRecordOptions). */
  setIdempotencyKey(key: string): this {
    this.idempotencyKey = key;
    return this;
  }

  /** Messages (idempotency keys or message ids) this one depends on, for `causal` ordering. */
  setDependsOn(...keys: string[]): this {
    this.dependsOn = [...(this.dependsOn ?? []), ...keys];
    return this;
  }

  build(): RedisStreamsRecord<T> {
    return new RedisStreamsRecord(this.data as T, {
      headers: this.headers,
      messageId: this.messageId,
      partitionKey: this.partitionKey,
      idempotencyKey: this.idempotencyKey,
      dependsOn: this.dependsOn,
    });
  }
}
