import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { logLevelsFromEnv } from '../../example-consumer/src/log-levels.js';
import { CURRENCIES } from '../../example-consumer/src/orders.contracts.js';
import { redactUrl } from '../../example-consumer/src/redact-url.js';
import { runWithConcurrency } from './concurrency.js';
import { OrdersProducer } from './orders.producer.js';
import { producerConfigFromEnv } from './producer.config.js';
import { ProducerAppModule } from './producer-app.module.js';

/**
 * Emits `ORDERS` (default 10) `orders.created` events, then asks the billing service for a quote and a sum.
 * Start the consumer first (`node dist/apps/example-consumer/src/main.js`) with the same REDIS_URL.
 */
async function main(): Promise<void> {
  const logger = new Logger('ExampleProducer');
  const config = producerConfigFromEnv();
  const app = await NestFactory.createApplicationContext(ProducerAppModule.forRoot(config), {
    logger: logLevelsFromEnv(),
  });
  logger.log(`Producing to redis=${redactUrl(config.connection?.url)} prefix=${config.streams?.keyPrefix}`);
  try {
    const producer = app.get(OrdersProducer);
    await producer.connect();

    const count = Math.max(0, Number.parseInt(process.env.ORDERS ?? '10', 10) || 0);
    const runId = Date.now().toString(36);
    const results = await runWithConcurrency(count, 50, (i) =>
      producer.orderCreated({ orderId: `ord-${runId}-${i}`, amount: 10 + (i % 90) + 0.99, currency: CURRENCIES[i % CURRENCIES.length] }),
    );
    const failed = results.filter((r) => r.status === 'rejected').length;
    logger.log(`Emitted ${count - failed}/${count} orders.created events`);

    const quote = await producer.quote({ amount: 19.99, quantity: 3, currency: 'EUR' });
    logger.log(`orders.quote 3 x 19.99 EUR -> ${JSON.stringify(quote)}`);
    const sum = await producer.sum([1.5, 2.25, 3]);
    logger.log(`orders.sum [1.5, 2.25, 3] -> ${JSON.stringify(sum)}`);
    if (failed > 0) process.exitCode = 1;
  } finally {
    await app.close();
  }
}

main().catch((error: unknown) => {
  new Logger('ExampleProducer').error(
    `Failed: ${error instanceof Error ? error.message : String(error)}`,
    error instanceof Error ? error.stack : undefined,
  );
  process.exitCode = 1;
});
