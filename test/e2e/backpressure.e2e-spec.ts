import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

@Injectable()
class Gauge {
  running = 0;
  maxRunning = 0;
  done = 0;
}

@Controller()
class BusyController {
  constructor(@Inject(Gauge) private readonly gauge: Gauge) {}

  private async work(): Promise<void> {
    this.gauge.running++;
    this.gauge.maxRunning = Math.max(this.gauge.maxRunning, this.gauge.running);
    await new Promise((resolve) => setTimeout(resolve, 20));
    this.gauge.running--;
    this.gauge.done++;
  }

  @StreamEvent('busy.a')
  a(@Payload() _: unknown) {
    return this.work();
  }

  @StreamEvent('busy.b')
  b(@Payload() _: unknown) {
    return this.work();
  }

  @StreamEvent('busy.c')
  c(@Payload() _: unknown) {
    return this.work();
  }
}

describe('backpressure (real Redis)', () => {
  const prefix = uniquePrefix('backpressure');
  let redis: RawRedis;
  let app: INestMicroservice;
  let client: RedisStreamsClient;

  beforeAll(async () => {
    redis = rawRedis();
    client = new RedisStreamsClient(testConfig(prefix));
  });

  afterAll(async () => {
    await client.close();
    await app?.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('never runs more handlers than consumer.concurrency, even when one read spans several busy streams', async () => {
    // Fill the three streams before the consumer starts, so its first reads find all of them busy.
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) for (const p of ['busy.a', 'busy.b', 'busy.c']) sends.push(lastValueFrom(client.emit(p, { i })));
    await Promise.all(sends);
    ({ app } = await startConsumer(testConfig(prefix, { consumer: { concurrency: 4, batchSize: 4 } }), [BusyController], [Gauge]));
    const gauge = app.get(Gauge);
    await waitFor(() => gauge.done === 120, { timeoutMs: 15_000, message: 'all 120 messages' });
    expect(gauge.maxRunning).toBe(4);
  });
});
