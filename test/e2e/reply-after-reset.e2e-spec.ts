import { Controller } from '@nestjs/common';
import type { INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, StreamMessage } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, redisUrl, uniquePrefix, type RawRedis } from '../support/redis.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

@Controller()
class SumController {
  @StreamMessage('reset.sum')
  sum(@Payload() numbers: number[]) {
    return numbers.reduce((a, b) => a + b, 0);
  }
}

/**
 * A client's reply reader blocks on its reply stream. When its connection is reset, ioredis drops that blocking read
 * without settling it: the client then never read another reply and its close() never resolved (found by the soak).
 */
describe('request-reply across a connection reset (real Redis)', () => {
  const prefix = uniquePrefix('reply-reset');
  let redis: RawRedis;
  let app: INestMicroservice;
  let proxy: TcpProxy;

  beforeAll(async () => {
    redis = rawRedis();
    ({ app } = await startConsumer(testConfig(prefix), [SumController]));
    const { hostname, port } = new URL(redisUrl());
    proxy = await TcpProxy.start(hostname, Number(port));
  });

  afterAll(async () => {
    await app.close();
    await proxy.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('after a reset of its connections the client is answered again, and close() resolves', async () => {
    const client = new RedisStreamsClient(testConfig(prefix, { connection: { url: proxy.url }, client: { requestTimeoutMs: 3_000 } }));
    try {
      expect(await lastValueFrom(client.send('reset.sum', [1, 2]))).toBe(3);
      proxy.setMode('drop'); // resets every open connection
      proxy.setMode('pass');
      // Requests sent while the client reconnects may time out; once it is back, every request is answered.
      await waitFor(async () => (await lastValueFrom(client.send('reset.sum', [20, 22])).catch(() => null)) === 42, {
        timeoutMs: 15_000,
        intervalMs: 200,
        message: 'an answer after the reset',
      });
    } finally {
      const closed = await Promise.race([client.close().then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('hung'), 5_000).unref())]);
      expect(closed).toBe('closed');
    }
  }, 30_000);
});
