import { Controller, Inject } from '@nestjs/common';
import type { INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { StreamEvent } from 'nestjs-redis-streams-enterprise';
import { testKeys } from '../support/keys.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, redisUrl, uniquePrefix, type RawRedis } from '../support/redis.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

const LOG = Symbol('LOG');

@Controller()
class KeyedController {
  constructor(@Inject(LOG) private readonly log: number[]) {}

  @StreamEvent('lost.reply')
  handle(@Payload() data: { key: string; n: number }) {
    this.log.push(data.n);
  }
}

/**
 * A read that Redis executed but whose reply never arrived (the connection dropped on the way back) leaves its entries
 * in the consumer's own pending list, delivered and never handled. A plain group's reclaimer finds them after
 * claimIdleMs; an ordered partition has no reclaimer, so the next entries of the key were handled and these never
 * (found by the soak, seed 7: a key's seq 130 stranded while 132..139 were handled). After a failed read the consumer
 * takes the partition over again from the last entry it dispatched: the stranded entries come first, in id order.
 */
describe('an ordered partition whose read reply was lost (real Redis)', () => {
  const prefix = uniquePrefix('lost-reply');
  const keys = testKeys(prefix);
  let redis: RawRedis;
  let app: INestMicroservice;
  let proxy: TcpProxy;

  beforeAll(async () => {
    redis = rawRedis();
    const { hostname, port } = new URL(redisUrl());
    proxy = await TcpProxy.start(hostname, Number(port));
  });

  afterAll(async () => {
    await app?.close();
    await proxy.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('the entries of the lost reply are handled before the ones written after them', async () => {
    const cfg = testConfig(prefix, {
      connection: { url: proxy.url, blockingWatchdogMs: 1_000 },
      partitioning: { enabled: true, strategy: 'hash', partitionCount: 1, partitionKey: 'key', sessionTimeoutMs: 5_000 },
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'key' },
    });
    const log: number[] = [];
    ({ app } = await startConsumer(cfg, [KeyedController], [{ provide: LOG, useValue: log }]));
    const stream = keys.partition('lost.reply', 0);
    const add = (n: number) => redis.xadd(stream, '*', 'pattern', 'lost.reply', 'key', 'k', 'data', JSON.stringify({ key: 'k', n }));
    await waitFor(async () => ((await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[]).length > 0, { message: 'the group' });
    await add(0);
    await waitFor(() => log.length === 1, { message: 'the first message' });
    // Stall the link while the consumer's read waits in Redis, write an entry past the proxy: Redis serves the read,
    // its reply is held in the proxy, and the reset throws it away. Repeated until the entry is pending, unhandled.
    let n = 1;
    let stranded = false;
    for (let attempt = 0; attempt < 10 && !stranded; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      proxy.setMode('stall');
      await add(n);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const pending = (await redis.xpending(stream, 'svc')) as [number, ...unknown[]];
      stranded = Number(pending[0]) === 1 && !log.includes(n);
      proxy.setMode('drop');
      proxy.setMode('pass');
      if (!stranded) await waitFor(() => log.includes(n), { timeoutMs: 10_000, message: `message ${n}` });
      n++;
    }
    expect(stranded).toBe(true);
    const last = n - 1;
    // Later messages of the key: they must wait for the stranded one.
    for (let m = n; m < n + 5; m++) await add(m);
    await waitFor(() => log.length >= n + 5, { timeoutMs: 15_000, message: 'every message' }).catch(() => undefined);
    expect(log.slice(-6)).toEqual([last, n, n + 1, n + 2, n + 3, n + 4]);
    expect(log).toEqual([...log].sort((a, b) => a - b));
    const pendingNow = async () => Number(((await redis.xpending(stream, 'svc')) as [number, ...unknown[]])[0]);
    await waitFor(async () => (await pendingNow()) === 0, { timeoutMs: 5_000, message: 'every entry acknowledged' }).catch(() => undefined);
    expect(await pendingNow()).toBe(0);
  }, 60_000);
});
