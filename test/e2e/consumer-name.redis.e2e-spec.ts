import { Controller, Inject, Injectable } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import type { INestMicroservice } from '@nestjs/common';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsContext, RedisStreamsStatus, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { testKeys } from '../support/keys.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Raw Redis side of consumer names and reclaiming: the consumer name's lease key (held, renewed, released, taken
 * over), and entries of a dead consumer that wait in its pending list while every handler slot of the survivor is busy.
 */

/** Handlers wait for `gate` (when set) so a test decides when handler slots free up. */
@Injectable()
class Work {
  readonly handled: { n: number; deliveryCount: number }[] = [];
  running = 0;
  maxRunning = 0;
  gate?: Promise<void>;
}

@Controller()
class JobsController {
  constructor(@Inject(Work) private readonly work: Work) {}

  @StreamEvent('lease.job')
  async run(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    this.work.running++;
    this.work.maxRunning = Math.max(this.work.maxRunning, this.work.running);
    try {
      await this.work.gate;
      this.work.handled.push({ n: data.n, deliveryCount: ctx.getDeliveryCount() });
    } finally {
      this.work.running--;
    }
  }
}

describe('consumer name lease and reclaim under load (raw Redis)', () => {
  const NAME_LEASE_MS = 1_500;
  const prefix = uniquePrefix('lease');
  const keys = testKeys(prefix);
  const stream = keys.stream('lease.job');
  const apps: INestMicroservice[] = [];
  let redis: RawRedis;
  let client: RedisStreamsClient;

  beforeAll(() => {
    redis = rawRedis();
    client = new RedisStreamsClient(testConfig(prefix));
  });

  afterAll(async () => {
    await client.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('holds the name with an expiring key while listening, renews it, and deletes it on close()', async () => {
    const key = keys.consumerNameLease('held', 'holder');
    const { app } = await startConsumer(testConfig(prefix, { consumer: { group: 'held', consumerName: 'holder', nameLeaseMs: NAME_LEASE_MS } }), [JobsController], [Work]);
    const token = await redis.get(key);
    expect(token).toMatch(/^.+\/\d+\/[0-9a-f]{16}$/);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(NAME_LEASE_MS);
    // Renewed: still held by the same token after the expiry it had when first looked at.
    const firstExpiry = Date.now() + ttl;
    await waitFor(async () => Date.now() > firstExpiry + 200 && (await redis.get(key)) === token, { timeoutMs: 5_000, message: 'the lease to be renewed' });
    await app.close();
    expect(await redis.exists(key)).toBe(0);
  });

  it('a server whose name was taken over by another instance stops reading and leaves that lease alone', async () => {
    const key = keys.consumerNameLease('lost', 'lost-1');
    const { app, server } = await startConsumer(
      testConfig(prefix, { consumer: { group: 'lost', consumerName: 'lost-1', nameLeaseMs: NAME_LEASE_MS, groupStartId: '$' } }),
      [JobsController],
      [Work],
    );
    apps.push(app);
    const work = app.get(Work);
    await lastValueFrom(client.emit('lease.job', { n: 1 }));
    await waitFor(() => work.handled.length === 1, { message: 'the first message' });
    const statuses: string[] = [];
    server.status.subscribe((s) => statuses.push(s));
    // What a twin that started while our lease had lapsed (Redis unreachable longer than nameLeaseMs) leaves behind.
    await redis.set(key, 'other-host/1/0123456789abcdef', 'PX', 60_000);
    await waitFor(() => statuses.includes(RedisStreamsStatus.Closed), { timeoutMs: 5_000, message: 'the server to close itself' });
    expect(await redis.get(key)).toBe('other-host/1/0123456789abcdef');
    await expect(server.getStatus()).resolves.toMatchObject({ healthy: false });
    // Nothing reads for this instance any more: a new message is still unread in the group.
    await lastValueFrom(client.emit('lease.job', { n: 2 }));
    const unread = await redis.xreadgroup('GROUP', 'lost', 'probe', 'COUNT', 10, 'STREAMS', stream, '>');
    expect(JSON.stringify(unread)).toContain('\\"n\\":2');
    expect(work.handled.map((h) => h.n)).toEqual([1]);
  });

  it('entries of a dead consumer wait while every handler slot is busy, and are claimed and handled once a slot frees', async () => {
    const CONCURRENCY = 2;
    const CLAIM_IDLE_MS = 1_000;
    const { app } = await startConsumer(
      testConfig(prefix, { consumer: { group: 'busy', groupStartId: '$', concurrency: CONCURRENCY, batchSize: CONCURRENCY, claimIdleMs: CLAIM_IDLE_MS } }),
      [JobsController],
      [Work],
    );
    apps.push(app);
    const work = app.get(Work);
    let open!: () => void;
    work.gate = new Promise((resolve) => (open = resolve));
    for (let n = 200; n < 202; n++) await lastValueFrom(client.emit('lease.job', { n }));
    // The survivor is busy: both slots hold a handler, so it reads nothing more.
    await waitFor(() => work.running === CONCURRENCY, { message: 'both slots busy' });
    for (let n = 100; n < 105; n++) await lastValueFrom(client.emit('lease.job', { n }));
    // Another consumer read these 5 and died without acknowledging (what SIGKILL leaves).
    await redis.xreadgroup('GROUP', 'busy', 'dead-consumer', 'COUNT', 100, 'STREAMS', stream, '>');
    expect((await redis.xpending(stream, 'busy', '-', '+', 10, 'dead-consumer')) as unknown[]).toHaveLength(5);
    // Idle for twice claimIdleMs, over several full reclaim passes (every claimIdleMs/4): still on the dead consumer,
    // because claiming takes at most as many entries as there are free slots (none).
    await waitFor(
      async () => {
        const held = (await redis.xpending(stream, 'busy', 'IDLE', 2 * CLAIM_IDLE_MS, '-', '+', 10, 'dead-consumer')) as unknown[];
        return held.length === 5;
      },
      { timeoutMs: 10_000, intervalMs: 50, message: 'the dead consumer’s entries to be idle for 2 × claimIdleMs' },
    );
    expect(work.handled).toEqual([]);
    open();
    await waitFor(() => work.handled.length === 7, { timeoutMs: 10_000, message: 'all 7 messages' });
    expect(work.handled.filter((h) => h.n >= 100 && h.n < 105).map((h) => h.deliveryCount)).toEqual([2, 2, 2, 2, 2]);
    expect(new Set(work.handled.map((h) => h.n)).size).toBe(7);
    expect(work.maxRunning).toBe(CONCURRENCY);
    await waitFor(async () => Number((await redis.xpending(stream, 'busy'))[0]) === 0, { message: 'acks' });
  });
});
