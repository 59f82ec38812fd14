import { Injectable } from '@nestjs/common';
import { toCents, type BillingStats, type Currency, type OrderCreated } from './orders.contracts.js';

/** Order ids remembered for duplicate detection; the oldest are forgotten first, so memory stays bounded. */
const MAX_REMEMBERED_ORDERS = 100_000;

/**
 * What the example consumer has billed. Delivery is at-least-once, so the same order can arrive twice (a retry
 * after a lost ack, a reclaim after a crash): the ledger counts an order once and reports the repeats.
 *
 * This is an in-memory example. A real service makes the side effect idempotent where it happens, for example
 * with a unique constraint on the order id in its database, or `SET billed:<orderId> 1 NX` in Redis.
 */
@Injectable()
export class BillingLedger {
  private readonly seen = new Set<string>();
  private ordersHandled = 0;
  private uniqueOrders = 0;
  private duplicates = 0;
  private redeliveries = 0;
  private quotesAnswered = 0;
  private sumsAnswered = 0;
  private readonly revenueCents: Partial<Record<Currency, number>> = {};

  /** Records an order; returns false when this order id was billed before. */
  bill(order: OrderCreated, deliveryCount: number): boolean {
    this.ordersHandled++;
    if (deliveryCount > 1) this.redeliveries++;
    if (this.seen.has(order.orderId)) {
      this.duplicates++;
      return false;
    }
    this.remember(order.orderId);
    this.uniqueOrders++;
    this.revenueCents[order.currency] = (this.revenueCents[order.currency] ?? 0) + toCents(order.amount);
    return true;
  }

  quoteAnswered(): void {
    this.quotesAnswered++;
  }

  sumAnswered(): void {
    this.sumsAnswered++;
  }

  snapshot(): Omit<BillingStats, 'consumer' | 'pid' | 'transport'> {
    return {
      ordersHandled: this.ordersHandled,
      uniqueOrders: this.uniqueOrders,
      duplicates: this.duplicates,
      redeliveries: this.redeliveries,
      revenueCents: { ...this.revenueCents },
      quotesAnswered: this.quotesAnswered,
      sumsAnswered: this.sumsAnswered,
    };
  }

  private remember(orderId: string): void {
    if (this.seen.size >= MAX_REMEMBERED_ORDERS) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.add(orderId);
  }
}
