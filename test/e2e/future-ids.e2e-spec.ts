import { Controller } from '@nestjs/common';
import type { INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { StreamEvent, type RedisStreamsClient, type RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { testKeys } from '../support/keys.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

const seen: unknown[] = [];

@Controller()
class FutureController {
  @StreamEvent('ids.future')
  onFuture(@Payload() data: unknown) {
    seen.push(data);
  }

  @StreamEvent('ids.normal')
  onNormal(@Payload() data: unknown) {
    seen.push(data);
  }
}

/**
 * An entry written by hand with an id far in the future moves the stream's id clock: every id Redis generates after
 * it continues from there. The transport keeps delivering, and getStatus() says what happened to that stream.
 */
describe('entry ids in the future (real Redis)', () => {
  const prefix = uniquePrefix('future-ids');
  const keys = testKeys(prefix);
  let redis: RawRedis;
  let app: INestMicroservice;
  let server: RedisStreamsServer;
  let client: RedisStreamsClient;

  beforeAll(async () => {
    redis = rawRedis();
    ({ app, server, client } = await startConsumer(testConfig(prefix), [FutureController]));
  });

  afterAll(async () => {
    await app.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('an entry with an id far ahead of the server clock is handled, and getStatus() warns about that stream only', async () => {
    await redis.xadd(keys.stream('ids.future'), '9999999999999-0', 'data', JSON.stringify({ n: 'forged' }));
    const next = await lastValueFrom(client.emit('ids.future', { n: 'after' }));
    expect(Number(next.split('-')[0])).toBeGreaterThanOrEqual(9_999_999_999_999); // Redis continues from the forged id
    await lastValueFrom(client.emit('ids.normal', { n: 'normal' }));
    await waitFor(() => seen.length === 3, { message: 'the three messages' });
    const status = await server.getStatus();
    const future = status.streams.find((s) => s.pattern === 'ids.future');
    const normal = status.streams.find((s) => s.pattern === 'ids.normal');
    expect(future?.lastIdAheadMs).toBeGreaterThan(100 * 365 * 86_400_000);
    expect(normal?.lastIdAheadMs).toBeNull();
    expect(status.warnings.filter((w) => w.includes("ahead of the Redis server's clock"))).toEqual([
      expect.stringContaining(`the last id of ${keys.stream('ids.future')} is`),
    ]);
  });
});
