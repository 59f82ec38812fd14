import { Controller, Inject } from '@nestjs/common';
import type { INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { testKeys } from '../support/keys.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

const LOG = Symbol('LOG');

@Controller()
class GlobalController {
  constructor(@Inject(LOG) private readonly log: number[]) {}

  @StreamEvent('stolen.jobs')
  async handle(@Payload() data: { n: number }) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    this.log.push(data.n);
  }
}

/**
 * A consumer that lost its partition while a read was on its way (a stall, a lease that expired during a Redis
 * restart) can have that read executed after the new owner took over: the entries it returns are delivered to the
 * old owner's pending list, where nobody handles them until someone claims them, while the new owner reads and
 * handles the entries after them. Found by the soak (seed 11, global order: a producer's message 94 committed after
 * its 100). The owner must notice such entries before it dispatches anything newer, and handle them first.
 * The stale read is played here by a raw XREADGROUP of another consumer name, inside the MULTI that writes the
 * entries, so it takes the first of them before the owner's blocking read can (deterministic).
 */
describe('entries taken by a stale read of a former owner (real Redis)', () => {
  const prefix = uniquePrefix('stolen-read');
  let redis: RawRedis;
  let app: INestMicroservice | undefined;
  let producer: RedisStreamsClient | undefined;

  beforeAll(() => {
    redis = rawRedis();
  });

  afterAll(async () => {
    await app?.close();
    await producer?.close();
    for (const strategy of ['global', 'partition']) await cleanupPrefix(redis, `${prefix}-${strategy}`);
    redis.disconnect();
  });

  it.each(['global', 'partition'] as const)('%s order: the stolen entries are handled before the ones read after them', async (strategy) => {
    const pattern = `stolen.jobs`;
    const cfg = testConfig(`${prefix}-${strategy}`, {
      partitioning: { enabled: false, sessionTimeoutMs: 30_000 },
      ordering: { enabled: true, strategy },
      exactlyOnce: { enabled: true },
    });
    const log: number[] = [];
    const started = await startConsumer(cfg, [GlobalController], [{ provide: LOG, useValue: log }]);
    app = started.app;
    const client = new RedisStreamsClient(cfg);
    producer = client;
    for (let n = 0; n < 3; n++) await lastValueFrom(client.emit(pattern, { n }));
    await waitFor(() => log.length === 3, { timeoutMs: 10_000, message: 'the first messages handled' });
    const stream = testKeys(`${prefix}-${strategy}`).partition(pattern, 0);
    // Messages 3..7 written and the first two taken by a "former owner" in one step: the owner's blocking read gets 5..7.
    const tx = redis.multi();
    for (let n = 3; n < 8; n++) tx.xadd(stream, '*', 'pattern', pattern, 'id', `m${n}`, 'data', JSON.stringify({ n }));
    tx.xreadgroup('GROUP', 'svc', 'former-owner', 'COUNT', 2, 'STREAMS', stream, '>');
    const results = (await tx.exec()) ?? [];
    const stolen = results[5]?.[1] as [string, [string, string[]][]][] | null;
    expect(stolen?.[0]?.[1].length).toBe(2);
    await waitFor(() => log.length >= 8, { timeoutMs: 15_000, message: 'every message handled' });
    expect(log).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // The handler logs before it returns and a key's acks land after it moved on: wait for the last ones (a skipped
    // entry's would never land).
    const pendingNow = async () => Number(((await redis.xpending(stream, 'svc')) as [number, ...unknown[]])[0]);
    await waitFor(async () => (await pendingNow()) === 0, { timeoutMs: 5_000, message: 'the last acks' }).catch(() => undefined);
    expect(await pendingNow()).toBe(0);
    await started.app.close();
    await client.close();
    app = undefined;
    producer = undefined;
  });
});
