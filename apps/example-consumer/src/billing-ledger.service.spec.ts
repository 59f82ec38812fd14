import { BillingLedger } from './billing-ledger.service.js';
import { computeQuote } from './orders.contracts.js';

describe('BillingLedger', () => {
  it('bills an order once and counts repeated deliveries as duplicates', () => {
    const ledger = new BillingLedger();
    expect(ledger.bill({ orderId: 'a', amount: 10.1, currency: 'EUR' }, 1)).toBe(true);
    expect(ledger.bill({ orderId: 'b', amount: 0.2, currency: 'EUR' }, 1)).toBe(true);
    expect(ledger.bill({ orderId: 'a', amount: 10.1, currency: 'EUR' }, 2)).toBe(false);
    expect(ledger.snapshot()).toMatchObject({
      ordersHandled: 3,
      uniqueOrders: 2,
      duplicates: 1,
      redeliveries: 1,
      revenueCents: { EUR: 1_030 },
    });
  });
});

describe('computeQuote', () => {
  it('rounds subtotal, tax and total to cents', () => {
    expect(computeQuote({ amount: 19.99, quantity: 3, currency: 'EUR' })).toEqual({
      currency: 'EUR',
      subtotal: 59.97,
      taxRate: 0.2,
      tax: 11.99,
      total: 71.96,
    });
  });
});
