import { Controller } from '@nestjs/common';
import type { INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsContext, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { beside, testKeys } from '../support/keys.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

const SESSION_MS = 3_000;
const KEYS = 6;

@Controller()
class EffectController {
  @StreamEvent('retaken.jobs')
  async handle(@Payload() data: { key: string; n: number }, @Ctx() ctx: RedisStreamsContext) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    // The effect, committed with the ack (exactly-once): the committed order per key is what ordering promises.
    ctx.transaction().call('RPUSH', beside(ctx.getStream(), `effects:${data.key}`), data.n);
  }
}

/**
 * A consumer whose lease lapsed locally (a stall) and was then lost and taken again by the same consumer (the only
 * one): entries it dispatched under the old lease were waiting out the lapse, and a read of the old period was on its
 * way. Under the new lease its takeover claims everything pending in id order; nothing of the old period may be
 * handled outside that order — neither an entry that waited (it must not run under the new lease, nor be skipped
 * while a later entry of its key runs) nor the entries of the old read. Found by the soak (seed 42, 30 minutes): a
 * key's seq 10 committed after its seq 16.
 */
describe('a partition lease lost and taken again by the same consumer (real Redis)', () => {
  const prefix = uniquePrefix('lease-retaken');
  const keys = testKeys(prefix);
  let redis: RawRedis;
  let app: INestMicroservice;
  let producer: RedisStreamsClient;

  beforeAll(() => {
    redis = rawRedis();
  });

  afterAll(async () => {
    await app?.close();
    await producer?.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('every key keeps its committed order and nothing stays pending', async () => {
    const cfg = testConfig(prefix, {
      partitioning: { enabled: true, strategy: 'hash', partitionCount: 1, partitionKey: 'key', sessionTimeoutMs: SESSION_MS },
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'key', maxConcurrency: 8 },
      exactlyOnce: { enabled: true },
      consumer: { batchSize: 16 },
    });
    ({ app } = await startConsumer(cfg, [EffectController]));
    producer = new RedisStreamsClient(cfg);
    const stream = keys.partition('retaken.jobs', 0);
    const lease = keys.leaseOf(stream, 'svc');
    const sent = new Map<string, number>();
    let stopProducing = false;
    // A paced producer: entries keep arriving while the consumer stalls, loses its lease and takes it again.
    const producing = (async () => {
      for (let i = 0; !stopProducing; i++) {
        const key = `k${i % KEYS}`;
        const n = sent.get(key) ?? 0;
        sent.set(key, n + 1);
        await lastValueFrom(producer.emit('retaken.jobs', { key, n }));
        if (i % KEYS === KEYS - 1) await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    for (let round = 0; round < 3; round++) {
      await waitFor(async () => Number(await redis.pttl(lease)) > SESSION_MS - 40, { intervalMs: 1, timeoutMs: 5_000, message: 'a fresh renewal' });
      await new Promise((resolve) => setTimeout(resolve, 50));
      // The lease disappears in Redis (it expired during the stall, say): the overdue renewal fails, the partition is
      // lost, and the next heartbeat takes it again under a new lease.
      await redis.del(lease);
      const until = Date.now() + SESSION_MS - 250; // past the local validity (90 % of the session)
      while (Date.now() < until) {
        // stall the event loop with entries dispatched and a read on its way
      }
      await waitFor(async () => (await redis.get(lease)) !== null, { timeoutMs: 10_000, message: 'the lease taken again' });
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    stopProducing = true;
    await producing;
    const committed = async () => {
      const lists = await Promise.all([...sent.keys()].map((key) => redis.lrange(beside(stream, `effects:${key}`), 0, -1)));
      return lists.reduce((total, list) => total + list.length, 0);
    };
    const total = [...sent.values()].reduce((a, b) => a + b, 0);
    await waitFor(async () => (await committed()) >= total, { timeoutMs: 30_000, message: 'every message committed' }).catch(() => undefined);
    const problems: string[] = [];
    for (const [key, count] of sent) {
      const effects = (await redis.lrange(beside(stream, `effects:${key}`), 0, -1)).map(Number);
      const expected = Array.from({ length: count }, (_, n) => n);
      if (effects.join(',') !== expected.join(',')) problems.push(`${key}: ${effects.join(',')}`);
    }
    const pending = (await redis.xpending(stream, 'svc')) as [number, ...unknown[]];
    expect({ problems, pending: Number(pending[0]) }).toEqual({ problems: [], pending: 0 });
  }, 90_000);
});
