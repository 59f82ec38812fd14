import { Injectable } from '@nestjs/common';
import { RedisStreamsClient, RedisStreamsRecordBuilder } from 'nestjs-redis-streams-enterprise';
import { lastValueFrom } from 'rxjs';
import {
  BILLING_STATS,
  ORDERS_CREATED,
  ORDERS_QUOTE,
  ORDERS_SUM,
  type BillingStats,
  type OrderCreated,
  type Quote,
  type QuoteRequest,
  type SumReply,
  type SumRequest,
} from '../../example-consumer/src/orders.contracts.js';

/**
 * Talks to the billing service through `RedisStreamsClient`:
 * - `emit` appends an event to the pattern's stream and resolves with the entry id once Redis stored it;
 * - `send` appends a request and resolves with the handler's reply (or fails with `RemoteHandlerError` /
 *   `RequestTimeoutError`).
 */
@Injectable()
export class OrdersProducer {
  constructor(private readonly client: RedisStreamsClient) {}

  /** Connects now, so a wrong REDIS_URL fails at start instead of at the first message. */
  async connect(): Promise<void> {
    await this.client.connect();
  }

  /**
   * Publishes `orders.created`. The order id doubles as the message id (`ctx.getMessageId()` in handlers), and a
   * header tells the consumer who sent it.
   */
  orderCreated(order: OrderCreated): Promise<string> {
    const record = new RedisStreamsRecordBuilder(order)
      .setMessageId(order.orderId)
      .setHeaders({ source: 'example-producer' })
      .build();
    return lastValueFrom(this.client.emit<string>(ORDERS_CREATED, record));
  }

  quote(request: QuoteRequest): Promise<Quote> {
    return lastValueFrom(this.client.send<Quote, QuoteRequest>(ORDERS_QUOTE, request));
  }

  sum(amounts: number[]): Promise<SumReply> {
    return lastValueFrom(this.client.send<SumReply, SumRequest>(ORDERS_SUM, { amounts }));
  }

  stats(): Promise<BillingStats> {
    return lastValueFrom(this.client.send<BillingStats>(BILLING_STATS, {}));
  }
}
