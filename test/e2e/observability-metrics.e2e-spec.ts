import { Controller, Inject, Injectable, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { Registry } from 'prom-client';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsContext, RedisStreamsServer, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { ConsumerAppModule, consumerConfigFromEnv } from '../../apps/example-consumer/src/index.js';
import { testConfig } from '../support/nest-apps.js';
import { sampleValue, type PromSample } from '../support/prometheus.js';
import { scrape, startMeteredHttpApp } from '../support/metered-http-app.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const PATTERN = 'orders.metered';

@Injectable()
class Handled {
  readonly succeeded: string[] = [];
  /** Messages with `hold` wait for this before they finish. */
  gate: Promise<void> = Promise.resolve();
}

@Controller()
class OrdersController {
  constructor(@Inject(Handled) private readonly handled: Handled) {}

  /** `failUntil`: fails while the delivery count is below it (null: always, so the message is dead-lettered). */
  @StreamEvent(PATTERN)
  async handle(@Payload() data: { id: string; failUntil: number | null; hold?: boolean }, @Ctx() ctx: RedisStreamsContext) {
    if (data.hold) await this.handled.gate;
    if (ctx.getDeliveryCount() < (data.failUntil ?? Infinity)) throw new Error(`failure of ${data.id}`);
    this.handled.succeeded.push(data.id);
  }
}

describe('metrics through prom-client, scraped over HTTP (real Redis)', () => {
  const prefix = uniquePrefix('metrics');
  const keys = testKeys(prefix);
  const registry = new Registry();
  let redis: RawRedis;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    redis = rawRedis();
    const config = testConfig(prefix, {
      retry: { attempts: 3, backoff: { type: 'fixed', delayMs: 50, maxDelayMs: 50, jitter: 0 } },
      observability: { metrics: { prometheus: true, registry, gaugeCacheMs: 0 } },
    });
    ({ app, metricsUrl: url } = await startMeteredHttpApp(config, registry, [OrdersController], [Handled]));
  });

  afterAll(async () => {
    await app?.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('counts what happened during a run with retries and a dead letter, and reports the gauges', async () => {
    const client = app.get(RedisStreamsClient);
    const messages = [
      ...['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, failUntil: 0 })),
      { id: 'flaky-1', failUntil: 2 },
      { id: 'flaky-2', failUntil: 2 },
      { id: 'poison', failUntil: null },
    ];
    for (const message of messages) await lastValueFrom(client.emit(PATTERN, message));
    const handled = app.get(Handled);
    const deadLetters = keys.deadLetter(PATTERN);
    await waitFor(async () => handled.succeeded.length === 7 && (await redis.xlen(deadLetters)) === 1, { message: '7 handled and 1 dead letter' });

    const consumer = { pattern: PATTERN, group: 'svc' };
    // The ack of the last handled message is counted once its XACK returned: wait for the scrape to show it.
    let samples: PromSample[] = [];
    await waitFor(async () => {
      samples = await scrape(url);
      return sampleValue(samples, 'redis_streams_messages_acked_total', consumer) === 7;
    }, { message: '7 acks in the scrape' });

    expect(sampleValue(samples, 'redis_streams_messages_published_total', { pattern: PATTERN, group: '' })).toBe(8);
    // 5 first deliveries that succeed, 2 messages failing once (2 deliveries each), 1 failing all 3 attempts.
    expect(sampleValue(samples, 'redis_streams_messages_received_total', consumer)).toBe(12);
    expect(sampleValue(samples, 'redis_streams_messages_failed_total', consumer)).toBe(5);
    expect(sampleValue(samples, 'redis_streams_messages_retried_total', consumer)).toBe(4);
    expect(sampleValue(samples, 'redis_streams_messages_dead_lettered_total', consumer)).toBe(1);
    expect(sampleValue(samples, 'redis_streams_messages_reclaimed_total', consumer)).toBe(0);
    expect(sampleValue(samples, 'redis_streams_messages_decode_failed_total', consumer)).toBe(0);
    expect(sampleValue(samples, 'redis_streams_handler_duration_seconds_count', consumer)).toBe(12);
    expect(sampleValue(samples, 'redis_streams_handler_duration_seconds_bucket', { ...consumer, le: '+Inf' })).toBe(12);
    expect(sampleValue(samples, 'redis_streams_end_to_end_latency_seconds_count', consumer)).toBe(7);
    expect(sampleValue(samples, 'redis_streams_publish_duration_seconds_count', { pattern: PATTERN, group: '' })).toBe(8);

    const stream = { ...consumer, stream: keys.stream(PATTERN) };
    expect(sampleValue(samples, 'redis_streams_pending_messages', stream)).toBe(0);
    expect(sampleValue(samples, 'redis_streams_consumer_lag_messages', stream)).toBe(0);
    expect(sampleValue(samples, 'redis_streams_oldest_pending_age_seconds', stream)).toBe(0);
    expect(sampleValue(samples, 'redis_streams_dead_letter_messages', { pattern: PATTERN, stream: keys.stream(PATTERN) })).toBe(1);
    expect(sampleValue(samples, 'redis_streams_in_flight_messages', { group: 'svc' })).toBe(0);
  });

  it('counts an entry reclaimed from a consumer that died holding it', async () => {
    const stream = keys.stream(PATTERN);
    const consumer = { pattern: PATTERN, group: 'svc' };
    const reclaimedBefore = sampleValue(await scrape(url), 'redis_streams_messages_reclaimed_total', consumer) ?? 0;
    // Written and read by a consumer of the group that then "dies" (never acknowledges), in one transaction so that the
    // server's own blocked read cannot take the entry first.
    await redis
      .multi()
      .xadd(stream, '*', 'data', JSON.stringify({ id: 'ghosted', failUntil: 0 }))
      .xreadgroup('GROUP', 'svc', 'ghost', 'COUNT', '1', 'STREAMS', stream, '>')
      .exec();
    await waitFor(() => app.get(Handled).succeeded.includes('ghosted'), { message: 'the ghost\'s entry reclaimed and handled', timeoutMs: 15_000 });
    await waitFor(async () => sampleValue(await scrape(url), 'redis_streams_messages_reclaimed_total', consumer) === reclaimedBefore + 1, { message: 'one reclaim counted' });
  });

  it('reports the entry a running handler holds: in flight, pending, and its age', async () => {
    const client = app.get(RedisStreamsClient);
    const handled = app.get(Handled);
    let release!: () => void;
    handled.gate = new Promise<void>((resolve) => (release = resolve));
    await lastValueFrom(client.emit(PATTERN, { id: 'held', failUntil: 0, hold: true }));
    const group = { group: 'svc' };
    const stream = { ...group, pattern: PATTERN, stream: keys.stream(PATTERN) };
    let samples: PromSample[] = [];
    await waitFor(async () => {
      samples = await scrape(url);
      return sampleValue(samples, 'redis_streams_in_flight_messages', group) === 1;
    }, { message: 'the held message in flight' });
    expect(sampleValue(samples, 'redis_streams_pending_messages', stream)).toBe(1);
    expect(sampleValue(samples, 'redis_streams_oldest_pending_age_seconds', stream)).toBeGreaterThanOrEqual(0);
    release();
    await waitFor(() => handled.succeeded.includes('held'), { message: 'held handled' });
    await waitFor(async () => sampleValue(await scrape(url), 'redis_streams_pending_messages', stream) === 0, { message: 'nothing pending' });
  });
});

describe('the example consumer app serves /metrics (real Redis)', () => {
  const prefix = uniquePrefix('example-metrics');
  let redis: RawRedis;
  let app: INestApplication;

  beforeAll(async () => {
    redis = rawRedis();
    // The app's own configuration (observability included), pointed at the test Redis and prefix.
    const config = testConfig(prefix, { ...consumerConfigFromEnv({}), connection: undefined, streams: { keyPrefix: prefix } });
    app = await NestFactory.create(ConsumerAppModule.forRoot(config), { logger: false });
    app.connectMicroservice({ strategy: app.get(RedisStreamsServer) });
    await app.startAllMicroservices();
    await app.listen(0, '127.0.0.1');
  });

  afterAll(async () => {
    await app?.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('shows the transport metrics in the scrape of GET /metrics', async () => {
    const { port } = app.getHttpServer().address() as { port: number };
    const samples = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(sampleValue(samples, 'redis_streams_in_flight_messages', { group: 'billing' })).toBe(0);
    expect(samples.some((s) => s.name === 'redis_streams_pending_messages' && s.labels.group === 'billing')).toBe(true);
  });
});
