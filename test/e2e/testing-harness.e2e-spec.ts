/*
 * nestjs-redis-streams-enterprise/testing: RedisStreamsTestHarness against a real Redis, through the public API only
 * (raw-key checks of the helpers are in test-redis.redis.e2e-spec.ts).
 */
import { Controller, Inject, Injectable, Module, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import {
  ConnectionClosedError,
  InvalidOptionsError,
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsEnterpriseModule,
  RedisStreamsExceptionFilter,
  RedisStreamsServer,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import {
  RedisStreamsTestHarness,
  SettlementTimeoutError,
  startTestRedis,
  testConfig,
  type TestRedis,
} from 'nestjs-redis-streams-enterprise/testing';

const PATTERN = 'harness.events';

type Action = 'ok' | 'fail-once' | 'always-fail' | 'reject';

/** Delivery counts seen per message key, per app. */
@Injectable()
class Deliveries {
  readonly byKey = new Map<string, number[]>();
}

@Controller()
class HarnessController {
  constructor(@Inject(Deliveries) private readonly deliveries: Deliveries) {}

  @StreamEvent(PATTERN)
  async handle(@Payload() data: { key: string; action: Action }, @Ctx() ctx: RedisStreamsContext) {
    const seen = this.deliveries.byKey.get(data.key) ?? [];
    seen.push(ctx.getDeliveryCount());
    this.deliveries.byKey.set(data.key, seen);
    if (data.action === 'always-fail') throw new RangeError(`cannot handle ${data.key}`);
    if (data.action === 'fail-once' && ctx.getDeliveryCount() < 2) throw new Error(`first attempt of ${data.key} fails`);
    if (data.action === 'reject') await ctx.deadLetter(`${data.key} is poison`);
  }
}

/** Fast retries: a message that always fails is dead-lettered after 2 attempts, well under a second. */
const FAST: RedisStreamsEnterpriseConfig = {
  consumer: { group: 'harness', blockMs: 200, reclaimIntervalMs: 50, shutdownTimeoutMs: 2_000 },
  retry: { attempts: 2, backoff: { type: 'fixed', delayMs: 20, maxDelayMs: 20, jitter: 0 } },
};

describe('RedisStreamsTestHarness (real Redis)', () => {
  let redis: TestRedis;
  const apps: INestMicroservice[] = [];
  const harnesses: RedisStreamsTestHarness[] = [];

  async function boot(config: RedisStreamsEnterpriseConfig): Promise<INestMicroservice> {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisStreamsEnterpriseModule.forRoot(config)],
      controllers: [HarnessController],
      providers: [Deliveries],
    }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(RedisStreamsServer), logger: false });
    app.useGlobalFilters(new RedisStreamsExceptionFilter());
    apps.push(app);
    await app.listen();
    return app;
  }

  const track = (harness: RedisStreamsTestHarness) => (harnesses.push(harness), harness);

  beforeAll(async () => {
    redis = await startTestRedis();
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    for (const harness of harnesses) {
      await harness.cleanup().catch(() => 0); // some were closed by their test already; cleanup needs an open one
      await harness.close();
    }
    await redis.stop();
  });

  describe('fromApp', () => {
    let app: INestMicroservice;
    let harness: RedisStreamsTestHarness;

    beforeAll(async () => {
      app = await boot(testConfig(redis, FAST));
      harness = track(RedisStreamsTestHarness.fromApp(app, { timeoutMs: 5_000 }));
    });

    it('resolves "handled" once the group acknowledged the entry', async () => {
      const result = await harness.emitAndWait(PATTERN, { key: 'a', action: 'ok' });

      expect(result).toEqual({
        outcome: 'handled',
        entryId: expect.stringMatching(/^\d+-\d+$/),
        pattern: PATTERN,
        stream: `${harness.keyPrefix}:{${PATTERN}}`,
        group: 'harness',
      });
      expect(app.get(Deliveries).byKey.get('a')).toEqual([1]);
    });

    it('waits through a failed attempt and its retry', async () => {
      const result = await harness.emitAndWait(PATTERN, { key: 'b', action: 'fail-once' });

      expect(result.outcome).toBe('handled');
      expect(app.get(Deliveries).byKey.get('b')).toEqual([1, 2]);
    });

    it('resolves "dead-lettered" with the letter when the attempts are used up', async () => {
      const result = await harness.emitAndWait(PATTERN, { key: 'c', action: 'always-fail' });

      expect(result.outcome).toBe('dead-lettered');
      expect(result.deadLetter).toMatchObject({
        reason: 'max-deliveries',
        originalId: result.entryId,
        stream: result.stream,
        group: 'harness',
        errorName: 'RangeError',
        errorMessage: 'cannot handle c',
        deliveries: 2,
        data: { key: 'c', action: 'always-fail' },
      });
    });

    it('resolves "dead-lettered" with reason "rejected" for ctx.deadLetter()', async () => {
      const result = await harness.emitAndWait(PATTERN, { key: 'd', action: 'reject' });

      expect(result.outcome).toBe('dead-lettered');
      expect(result.deadLetter).toMatchObject({ reason: 'rejected', errorMessage: 'd is poison', deliveries: 1 });
    });

    it('settles many concurrent waits, each with its own outcome', async () => {
      const actions: Action[] = ['ok', 'always-fail', 'fail-once', 'reject'];
      const keys = Array.from({ length: 24 }, (_, i) => ({ key: `many-${i}`, action: actions[i % actions.length] }));

      const results = await Promise.all(keys.map((data) => harness.emitAndWait(PATTERN, data)));

      expect(results.map((r) => r.outcome)).toEqual(
        keys.map(({ action }) => (action === 'ok' || action === 'fail-once' ? 'handled' : 'dead-lettered')),
      );
      expect(new Set(results.map((r) => r.entryId)).size).toBe(keys.length);
    });

    it('waits for an entry emitted elsewhere (waitUntilSettled)', async () => {
      const client = new RedisStreamsClient(harness.config);
      try {
        const entryId = await lastValueFrom(client.emit<string>(PATTERN, { key: 'e', action: 'ok' }));
        await expect(harness.waitUntilSettled(PATTERN, entryId)).resolves.toMatchObject({ outcome: 'handled', entryId });
      } finally {
        await client.close();
      }
    });

    it('fails with SettlementTimeoutError, saying what Redis showed, when no consumer of the group runs', async () => {
      const started = Date.now();
      const error = await harness.emitAndWait(PATTERN, { key: 'f', action: 'ok' }, { group: 'nobody', timeoutMs: 300 }).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(SettlementTimeoutError);
      expect(error).toMatchObject({ code: 'SETTLEMENT_TIMEOUT', group: 'nobody', timeoutMs: 300, pattern: PATTERN });
      expect((error as SettlementTimeoutError).message).toMatch(/group "nobody" does not exist on the stream/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  });

  it('fromConfig: a partitioned topic settles in the partition that holds the entry', async () => {
    const config = testConfig(redis, { ...FAST, partitioning: { enabled: true, partitionCount: 4 } });
    await boot(config);
    const harness = track(RedisStreamsTestHarness.fromConfig(config));

    const handled = await harness.emitAndWait(PATTERN, { key: 'p1', action: 'ok' }, { timeoutMs: 5_000 });
    const dead = await harness.emitAndWait(PATTERN, { key: 'p2', action: 'always-fail' }, { timeoutMs: 5_000 });

    expect(handled.outcome).toBe('handled');
    expect(handled.stream).toMatch(new RegExp(`^${harness.keyPrefix}:\\{${PATTERN}#[0-3]\\}$`));
    expect(dead).toMatchObject({ outcome: 'dead-lettered', deadLetter: { reason: 'max-deliveries', stream: dead.stream } });
  });

  it('close() ends a wait in progress with ConnectionClosedError', async () => {
    const harness = RedisStreamsTestHarness.fromConfig(testConfig(redis, FAST), { pollIntervalMs: 50 });
    // Nothing consumes this prefix: the wait polls until closed.
    const entryId = await harness.emit(PATTERN, { key: 'g', action: 'ok' });
    const waiting = harness.waitUntilSettled(PATTERN, entryId, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    const started = Date.now();
    await harness.close();

    await expect(waiting).resolves.toBeInstanceOf(ConnectionClosedError);
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect(harness.emit(PATTERN, { key: 'h', action: 'ok' })).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('fromApp refuses an app without RedisStreamsEnterpriseModule, naming fromConfig', async () => {
    @Module({})
    class EmptyModule {}
    const moduleRef = await Test.createTestingModule({ imports: [EmptyModule] }).compile();
    try {
      expect(() => RedisStreamsTestHarness.fromApp(moduleRef)).toThrow(InvalidOptionsError);
      expect(() => RedisStreamsTestHarness.fromApp(moduleRef)).toThrow(/imports RedisStreamsEnterpriseModule.*fromConfig/);
    } finally {
      await moduleRef.close();
    }
  });

  it('rejects invalid options with every bad one listed', () => {
    expect(() => RedisStreamsTestHarness.fromConfig(testConfig(redis), { timeoutMs: 0, pollIntervalMs: 0 })).toThrow(
      /timeoutMs must be a positive number of ms \(got 0\); pollIntervalMs must not be less than 1 \(got 0\)/,
    );
  });
});
