import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

@Injectable()
class Seen {
  readonly ns: number[] = [];
}

@Controller()
class RecoveryController {
  constructor(@Inject(Seen) private readonly seen: Seen) {}

  @StreamEvent('recovery.job')
  job(@Payload() data: { n: number }) {
    this.seen.ns.push(data.n);
  }
}

describe('recovery of groups and consumers (real Redis)', () => {
  const prefix = uniquePrefix('recovery');
  const keys = testKeys(prefix);
  const stream = keys.stream('recovery.job');
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

  it('recreates a deleted stream and group (NOGROUP) and resumes reading', async () => {
    const { app, server } = await startConsumer(testConfig(prefix, { consumer: { group: 'nogroup' } }), [RecoveryController], [Seen]);
    apps.push(app);
    const seen = app.get(Seen).ns;
    await lastValueFrom(client.emit('recovery.job', { n: 1 }));
    await waitFor(() => seen.includes(1), { message: 'the first message' });
    // What an evicting Redis, a FLUSHALL or a restart without persistence does to a stream.
    await redis.del(stream);
    await waitFor(async () => (await redis.exists(stream)) === 1 && ((await redis.xinfo('GROUPS', stream)) as unknown[]).length === 1, {
      message: 'the group to be recreated',
    });
    await lastValueFrom(client.emit('recovery.job', { n: 2 }));
    await waitFor(() => seen.includes(2), { message: 'reading to resume' });
    expect((await server.getStatus()).healthy).toBe(true);
  });

  it('removes consumers that went away and own nothing, but never one that still owns entries', async () => {
    const group = 'sweep';
    await redis.xgroup('CREATE', stream, group, '$', 'MKSTREAM');
    await redis.call('XGROUP', 'CREATECONSUMER', stream, group, 'gone-empty');
    await lastValueFrom(client.emit('recovery.job', { n: 3 }));
    await redis.xreadgroup('GROUP', group, 'gone-owning', 'COUNT', 1, 'STREAMS', stream, '>');
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // both ghosts idle for more than deadConsumerIdleMs
    const { app } = await startConsumer(
      testConfig(prefix, { consumer: { group, deadConsumerIdleMs: 1_000, claimIdleMs: 60_000 } }),
      [RecoveryController],
      [Seen],
    );
    apps.push(app);
    const names = async () => ((await redis.xinfo('CONSUMERS', stream, group)) as string[][]).map((c) => c[1]);
    await waitFor(async () => !(await names()).includes('gone-empty'), { message: 'the empty ghost to be removed' });
    expect(await names()).toContain('gone-owning'); // its pending entry would become unclaimable
  });

  it('warns in getStatus() when a group lags close to the retention limit', async () => {
    // One slow handler at a time: the group falls behind while producers go on.
    const { app, server } = await startConsumer(
      testConfig(prefix, { consumer: { group: 'laggard', groupStartId: '$', concurrency: 1, batchSize: 1 }, streams: { maxLen: 100 } }),
      [SlowController],
    );
    apps.push(app);
    expect((await server.getStatus()).warnings).toEqual([]);
    for (let n = 0; n < 90; n++) await redis.xadd(stream, '*', 'data', JSON.stringify({ n }));
    await waitFor(async () => (await server.getStatus()).warnings.length > 0, { message: 'the lag warning' });
    const status = await server.getStatus();
    expect(status.warnings.join(' ')).toMatch(/group laggard is (8[1-9]|90) entries behind on .* streams\.maxLen \(100\)/);
    expect(status.streams[0].warnings).toEqual(status.warnings);
  });
});

@Controller()
class SlowController {
  @StreamEvent('recovery.job')
  async job() {
    await new Promise((resolve) => setTimeout(resolve, 10_000).unref());
  }
}
