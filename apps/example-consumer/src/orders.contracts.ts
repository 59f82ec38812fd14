/*
 * The message contract between the example producer and the example consumer: patterns and payload shapes.
 * The consumer owns it; producers import it (types and constants only), as they would import a shared package.
 */

/** Event: an order was placed. Handled by `@EventPattern(ORDERS_CREATED)`. */
export const ORDERS_CREATED = 'orders.created';
/** Request: price an order (subtotal, tax, total). Handled by `@MessagePattern(ORDERS_QUOTE)`. */
export const ORDERS_QUOTE = 'orders.quote';
/** Request with an object pattern: add up amounts. Handled by `@MessagePattern(ORDERS_SUM)`. */
export const ORDERS_SUM = { cmd: 'orders.sum' } as const;
/** Request: the consumer's counters (what it handled, and the transport's own metrics). */
export const BILLING_STATS = 'billing.stats';

export const CURRENCIES = ['EUR', 'USD', 'GBP'] as const;
export type Currency = (typeof CURRENCIES)[number];

export interface OrderCreated {
  orderId: string;
  /** Major units with at most two decimals, e.g. 19.99. */
  amount: number;
  currency: Currency;
}

export interface QuoteRequest {
  amount: number;
  quantity: number;
  currency: Currency;
}

export interface Quote {
  currency: Currency;
  subtotal: number;
  taxRate: number;
  tax: number;
  total: number;
}

export interface SumRequest {
  amounts: number[];
}

export interface SumReply {
  count: number;
  total: number;
}

/** Counters reported by the consumer process (in-process, since its start). */
export interface BillingStats {
  consumer: string;
  pid: number;
  /** `orders.created` deliveries handled successfully, redeliveries included. */
  ordersHandled: number;
  /** Distinct order ids among them. */
  uniqueOrders: number;
  /** Deliveries of an order id that had already been handled (at-least-once in action). */
  duplicates: number;
  /** Deliveries with `ctx.getDeliveryCount() > 1` (retries and reclaims). */
  redeliveries: number;
  /** Sum of `amount` per currency over unique orders, in minor units (cents), to check payload integrity. */
  revenueCents: Partial<Record<Currency, number>>;
  quotesAnswered: number;
  sumsAnswered: number;
  /** `RedisStreamsServer.getMetrics()` of the consumer. */
  transport: {
    received: number;
    acked: number;
    failed: number;
    retried: number;
    deadLettered: number;
    reclaimed: number;
    handlerLatencyMs: { p50: number; p99: number; max: number };
  };
}

const TAX_RATES: Record<Currency, number> = { EUR: 0.2, USD: 0.0825, GBP: 0.2 };

const round2 = (value: number) => Math.round(value * 100) / 100;

/** Pure pricing rule, shared so a producer can check the replies it gets. */
export function computeQuote({ amount, quantity, currency }: QuoteRequest): Quote {
  const subtotal = round2(amount * quantity);
  const taxRate = TAX_RATES[currency];
  const tax = round2(subtotal * taxRate);
  return { currency, subtotal, taxRate, tax, total: round2(subtotal + tax) };
}

/** Minor units of an amount with at most two decimals (avoids float drift when adding thousands of them). */
export function toCents(amount: number): number {
  return Math.round(amount * 100);
}
