export { ConsumerAppModule } from './consumer-app.module.js';
export { OrdersController } from './orders.controller.js';
export { BillingLedger } from './billing-ledger.service.js';
export { consumerConfigFromEnv } from './consumer.config.js';
export { logLevelsFromEnv } from './log-levels.js';
export {
  BILLING_STATS,
  CURRENCIES,
  ORDERS_CREATED,
  ORDERS_QUOTE,
  ORDERS_SUM,
  computeQuote,
  toCents,
  type BillingStats,
  type Currency,
  type OrderCreated,
  type Quote,
  type QuoteRequest,
  type SumReply,
  type SumRequest,
} from './orders.contracts.js';
