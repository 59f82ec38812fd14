/*
 * The billing consumer's handlers against a real Redis, the way a user of the library tests theirs: a Redis for the
 * file (REDIS_URL, or a throw-away redis-server), the app's own module and configuration with an isolated key prefix
 * per test, and RedisStreamsTestHarness to emit and wait for the outcome (handled, or dead-lettered with a reason).
 */
import type { INestMicroservice } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { RedisStreamsExceptionFilter, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { RedisStreamsTestHarness, startTestRedis, testConfig, type TestRedis } from 'nestjs-redis-streams-enterprise/testing';
import { BillingLedger } from './billing-ledger.service.js';
import { ConsumerAppModule } from './consumer-app.module.js';
import { consumerConfigFromEnv } from './consumer.config.js';
import { ORDERS_CREATED } from './orders.contracts.js';

describe('OrdersController (billing consumer on Redis)', () => {
  let redis: TestRedis;
  let app: INestMicroservice;
  let harness: RedisStreamsTestHarness;

  beforeAll(async () => {
    redis = await startTestRedis();
  });

  afterAll(async () => {
    await redis.stop();
  });

  beforeEach(async () => {
    // The app's configuration, on the test Redis with a key prefix of this test's own; retries made quick.
    const config = testConfig(redis, { ...consumerConfigFromEnv({}), retry: { attempts: 2, backoff: { type: 'fixed', delayMs: 20, jitter: 0 } } });
    const moduleRef = await Test.createTestingModule({ imports: [ConsumerAppModule.forRoot(config)] }).compile();
    app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(RedisStreamsServer), logger: false });
    app.useGlobalFilters(new RedisStreamsExceptionFilter()); // as main.ts: dead letters keep the real error message
    await app.listen();
    harness = RedisStreamsTestHarness.fromApp(app);
  });

  afterEach(async () => {
    await app.close();
    await harness.cleanup();
    await harness.close();
  });

  it('bills a valid order', async () => {
    const result = await harness.emitAndWait(ORDERS_CREATED, { orderId: 'o-1', amount: 19.99, currency: 'EUR' }, { timeoutMs: 5_000 });

    expect(result).toMatchObject({ outcome: 'handled', group: 'billing' });
    expect(result.deadLetter).toBeUndefined();
    expect(app.get(BillingLedger).snapshot()).toMatchObject({ uniqueOrders: 1, revenueCents: { EUR: 1_999 } });
  });

  it('dead-letters an invalid order after its attempts, with the validation error', async () => {
    const result = await harness.emitAndWait(ORDERS_CREATED, { orderId: 'o-2', amount: -5, currency: 'XYZ' }, { timeoutMs: 5_000 });

    expect(result.outcome).toBe('dead-lettered');
    expect(result.deadLetter).toMatchObject({ reason: 'max-deliveries', deliveries: 2, originalId: result.entryId, data: { orderId: 'o-2' } });
    expect(result.deadLetter?.errorMessage).toMatch(/amount: amount must not be less than 0/);
    expect(result.deadLetter?.errorMessage).toMatch(/currency: currency must be one of the following values/);
    expect(app.get(BillingLedger).snapshot().ordersHandled).toBe(0);
  });
});
