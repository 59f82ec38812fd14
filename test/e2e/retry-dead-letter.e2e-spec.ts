import { Controller, Inject, Injectable } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import type { INestMicroservice } from '@nestjs/common';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsContext, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

/** Per-app record of attempts: message key -> delivery counts seen, in order. */
@Injectable()
class Attempts {
  readonly byKey = new Map<string, { deliveryCount: number; at: number; consumer: string }[]>();
  succeeded: string[] = [];
  failUntil = new Map<string, number>();
}

@Controller()
class FlakyController {
  constructor(@Inject(Attempts) private readonly attempts: Attempts) {}

  /** Fails while the delivery count is below `failUntil` for its key (Infinity: always). */
  @StreamEvent('invoices.issue')
  issue(@Payload() data: { key: string; failUntil: number | null }, @Ctx() ctx: RedisStreamsContext) {
    const list = this.attempts.byKey.get(data.key) ?? [];
    list.push({ deliveryCount: ctx.getDeliveryCount(), at: Date.now(), consumer: ctx.getConsumer() });
    this.attempts.byKey.set(data.key, list);
    if (ctx.getDeliveryCount() < (data.failUntil ?? Infinity)) throw new Error(`temporary failure of ${data.key}`);
    this.attempts.succeeded.push(data.key);
  }
}

const fieldsOf = (list: string[]) => {
  const fields: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) fields[list[i]] = list[i + 1];
  return fields;
};

describe('retries and dead letters (real Redis)', () => {
  const prefix = uniquePrefix('retry');
  const keys = testKeys(prefix);
  const stream = keys.stream('invoices.issue');
  const dlq = keys.deadLetter('invoices.issue');
  const apps: INestMicroservice[] = [];
  let redis: RawRedis;
  let client: RedisStreamsClient;

  const config = (group = 'svc') =>
    testConfig(prefix, {
      consumer: { group },
      retry: { attempts: 3, backoff: { type: 'exponential', delayMs: 100, maxDelayMs: 1_000, jitter: 0 } },
    });

  beforeAll(() => {
    redis = rawRedis();
    client = new RedisStreamsClient(config());
  });

  afterAll(async () => {
    await client.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('retries a failing handler with backoff until it succeeds, then acknowledges', async () => {
    const { app } = await startConsumer(config(), [FlakyController], [Attempts]);
    apps.push(app);
    const attempts = app.get(Attempts);
    await lastValueFrom(client.emit('invoices.issue', { key: 'inv-1', failUntil: 3 }));
    await waitFor(() => attempts.succeeded.includes('inv-1'), { message: 'the third attempt to succeed' });
    const seen = attempts.byKey.get('inv-1') ?? [];
    expect(seen.map((s) => s.deliveryCount)).toEqual([1, 2, 3]);
    // exponential backoff: ~100 ms before attempt 2, ~200 ms before attempt 3 (plus the reclaim tick of 100 ms)
    expect(seen[1].at - seen[0].at).toBeGreaterThanOrEqual(90);
    expect(seen[2].at - seen[1].at).toBeGreaterThanOrEqual(190);
    await waitFor(async () => Number((await redis.xpending(stream, 'svc'))[0]) === 0, { message: 'the ack' });
    expect(await redis.xlen(dlq)).toBe(0);
  });

  it('dead-letters after the last attempt, atomically with the ack, with the failure details', async () => {
    const app = apps[0];
    const attempts = app.get(Attempts);
    const before = Date.now();
    const entryId = await lastValueFrom(client.emit('invoices.issue', { key: 'inv-2', failUntil: null }));
    await waitFor(async () => (await redis.xlen(dlq)) === 1, { message: 'the dead letter' });
    expect((attempts.byKey.get('inv-2') ?? []).map((s) => s.deliveryCount)).toEqual([1, 2, 3]);
    const [[dlqId, list]] = await redis.xrange(dlq, '-', '+');
    const fields = fieldsOf(list);
    expect(fields).toMatchObject({
      pattern: 'invoices.issue',
      'rse.dlq.reason': 'max-deliveries',
      'rse.dlq.originalId': entryId,
      'rse.dlq.stream': stream,
      'rse.dlq.group': 'svc',
      'rse.dlq.errorName': 'Error',
      'rse.dlq.errorMessage': 'temporary failure of inv-2',
      'rse.dlq.deliveries': '3',
    });
    expect(JSON.parse(fields.data)).toEqual({ key: 'inv-2', failUntil: null });
    const first = Number(fields['rse.dlq.firstFailedAt']);
    const last = Number(fields['rse.dlq.lastFailedAt']);
    expect(first).toBeGreaterThanOrEqual(before - 1_000); // server clock; same machine
    // attempts 1 and 3 are separated by the backoff of 100 + 200 ms
    expect(last - first).toBeGreaterThanOrEqual(250);
    expect(await redis.hlen(keys.failures('invoices.issue', 'svc'))).toBe(0);
    expect(dlqId).toMatch(/^\d+-\d+$/);
    expect(Number((await redis.xpending(stream, 'svc'))[0])).toBe(0);
    expect(await redis.zcard(keys.retrySchedule('invoices.issue', 'svc'))).toBe(0);
  });

  it('counts attempts in Redis, so a retry due on a consumer that stopped is taken over by another', async () => {
    const first = apps.shift() as INestMicroservice;
    await first.close();
    const { app: a } = await startConsumer(
      testConfig(prefix, { consumer: { group: 'handover' }, retry: { attempts: 3, backoff: { type: 'fixed', delayMs: 2_000, jitter: 0, maxDelayMs: 2_000 } } }),
      [FlakyController],
      [Attempts],
    );
    await lastValueFrom(client.emit('invoices.issue', { key: 'inv-3', failUntil: 3 }));
    await waitFor(() => (a.get(Attempts).byKey.get('inv-3')?.length ?? 0) === 1, { message: 'the first attempt' });
    // The first consumer goes away while its retry waits; the entry stays pending with delivery count 1.
    await a.close();
    const { app: b } = await startConsumer(testConfig(prefix, { consumer: { group: 'handover' }, retry: { attempts: 3 } }), [FlakyController], [Attempts]);
    apps.push(b);
    const attemptsB = b.get(Attempts);
    await waitFor(() => attemptsB.succeeded.includes('inv-3'), { timeoutMs: 10_000, message: 'the other consumer to finish it' });
    expect(attemptsB.byKey.get('inv-3')?.map((s) => s.deliveryCount)).toEqual([2, 3]);
  });

  it('leaves other messages flowing while one waits for its retry', async () => {
    const attempts = apps[0].get(Attempts);
    await lastValueFrom(client.emit('invoices.issue', { key: 'slow-fail', failUntil: null }));
    await lastValueFrom(client.emit('invoices.issue', { key: 'fine-1', failUntil: 1 }));
    await lastValueFrom(client.emit('invoices.issue', { key: 'fine-2', failUntil: 1 }));
    await waitFor(() => attempts.succeeded.includes('fine-1') && attempts.succeeded.includes('fine-2'), { message: 'the healthy messages' });
  });
});
