import { Controller, Inject } from '@nestjs/common';
import type { INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { aclSetUserArguments, RedisStreamsClient, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { testKeys } from '../support/keys.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, redisUrl, uniquePrefix } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

const LOG = Symbol('LOG');
const PASSWORD = 'not-now-pw';

@Controller()
class KeyedController {
  constructor(@Inject(LOG) private readonly log: number[]) {}

  @StreamEvent('not.now')
  handle(@Payload() data: { key: string; n: number }) {
    this.log.push(data.n);
  }
}

/**
 * On an ordered partition, a step before the handler that cannot be done now (here the claim-checked payload's GET,
 * refused by the consumer's ACL user; in the soak, a cluster node unreachable) used to schedule a retry as on a plain
 * group. Partitions have no reclaimer: the entry stayed pending for good while the key's next entries were handled
 * (found by the cluster soak, seed 45). It is now tried again in place while the key waits.
 */
describe('an ordered partition whose entry cannot be fetched now (real Redis)', () => {
  const prefix = uniquePrefix('not-now');
  const keys = testKeys(prefix);
  const user = `${prefix}-consumer`;
  const admin = rawRedis() as Redis;
  let app: INestMicroservice | undefined;

  afterAll(async () => {
    await app?.close();
    await admin.call('ACL', 'DELUSER', user).catch(() => undefined);
    await cleanupPrefix(admin, prefix);
    admin.disconnect();
  });

  it('keeps the key waiting until the payload can be fetched, then handles its entries in order, all acknowledged', async () => {
    const url = new URL(redisUrl());
    url.username = user;
    url.password = PASSWORD;
    const shared = {
      partitioning: { enabled: true, strategy: 'hash', partitionCount: 1, partitionKey: 'key' },
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'key' },
      streams: { claimCheckThresholdBytes: 256 },
    } as const;
    await admin.call('ACL', 'SETUSER', ...aclSetUserArguments('consumer', { user, password: PASSWORD, keyPrefix: prefix }));
    const log: number[] = [];
    ({ app } = await startConsumer(testConfig(prefix, { ...shared, connection: { url: url.toString() } }), [KeyedController], [{ provide: LOG, useValue: log }]));
    const producer = new RedisStreamsClient(testConfig(prefix, shared));
    const stream = keys.partition('not.now', 0);
    try {
      await lastValueFrom(producer.emit('not.now', { key: 'k', n: 0 }));
      await waitFor(() => log.length === 1, { message: 'the first message' });
      await admin.call('ACL', 'SETUSER', user, '-get');
      await lastValueFrom(producer.emit('not.now', { key: 'k', n: 1, pad: 'x'.repeat(1_000) })); // claim-checked
      for (let n = 2; n < 5; n++) await lastValueFrom(producer.emit('not.now', { key: 'k', n }));
      // The claim-checked entry is delivered and cannot be fetched: nothing after it may be handled meanwhile.
      await waitFor(async () => Number(((await admin.xpending(stream, 'svc')) as [number])[0]) >= 1, { message: 'the entry delivered' });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(log).toEqual([0]);
      await admin.call('ACL', 'SETUSER', user, '+get');
      await waitFor(() => log.length >= 5, { timeoutMs: 10_000, message: 'every message' }).catch(() => undefined);
      expect(log).toEqual([0, 1, 2, 3, 4]);
      const pendingNow = async () => Number(((await admin.xpending(stream, 'svc')) as [number])[0]);
      await waitFor(async () => (await pendingNow()) === 0, { timeoutMs: 5_000, message: 'every entry acknowledged' }).catch(() => undefined);
      expect(await pendingNow()).toBe(0);
      expect(await admin.zcard(keys.retryScheduleOf(stream, 'svc'))).toBe(0);
    } finally {
      await producer.close();
    }
  }, 40_000);
});
