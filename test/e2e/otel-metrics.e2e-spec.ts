import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type DataPoint, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsContext, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

/** A reader collected on demand (as a pull exporter would be). */
class OnDemandReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

@Injectable()
class Handled {
  readonly ids: string[] = [];
}

@Controller()
class PaymentsController {
  constructor(@Inject(Handled) private readonly handled: Handled) {}

  @StreamEvent('payments.otel')
  handle(@Payload() data: { id: string; failUntil: number }, @Ctx() ctx: RedisStreamsContext) {
    if (ctx.getDeliveryCount() < data.failUntil) throw new Error(`failure of ${data.id}`);
    this.handled.ids.push(data.id);
  }
}

describe('metrics through the OpenTelemetry metrics API (SDK MeterProvider, real Redis)', () => {
  const prefix = uniquePrefix('otel-metrics');
  const keys = testKeys(prefix);
  const reader = new OnDemandReader();
  const provider = new MeterProvider({ readers: [reader] });
  let redis: RawRedis;
  let app: INestMicroservice;

  const collect = async (): Promise<MetricData[]> => (await reader.collect()).resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  const points = (all: MetricData[], name: string) => (all.find((m) => m.descriptor.name === name)?.dataPoints ?? []) as DataPoint<unknown>[];
  const valueOf = (all: MetricData[], name: string, attributes: Record<string, string>) =>
    points(all, name).find((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v))?.value;

  beforeAll(async () => {
    metrics.setGlobalMeterProvider(provider);
    redis = rawRedis();
    const config = testConfig(prefix, {
      retry: { attempts: 3, backoff: { type: 'fixed', delayMs: 50, maxDelayMs: 50, jitter: 0 } },
      observability: { metrics: { openTelemetry: true, gaugeCacheMs: 0 } },
    });
    ({ app } = await startConsumer(config, [PaymentsController], [Handled]));
  });

  afterAll(async () => {
    await app?.close();
    await provider.shutdown();
    metrics.disable();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('reports counters, histograms and gauges of a run with a retry', async () => {
    const client = app.get(RedisStreamsClient);
    await lastValueFrom(client.emit('payments.otel', { id: 'p-1', failUntil: 0 }));
    await lastValueFrom(client.emit('payments.otel', { id: 'p-2', failUntil: 2 }));
    await waitFor(() => app.get(Handled).ids.length === 2, { message: 'both handled' });
    const consumer = { pattern: 'payments.otel', group: 'svc' };
    let all: MetricData[] = [];
    await waitFor(async () => valueOf((all = await collect()), 'redis_streams_messages_acked', consumer) === 2, { message: '2 acks collected' });
    expect(valueOf(all, 'redis_streams_messages_published', { pattern: 'payments.otel', group: '' })).toBe(2);
    expect(valueOf(all, 'redis_streams_messages_received', consumer)).toBe(3);
    expect(valueOf(all, 'redis_streams_messages_failed', consumer)).toBe(1);
    expect(valueOf(all, 'redis_streams_messages_retried', consumer)).toBe(1);
    const handlerDuration = valueOf(all, 'redis_streams_handler_duration_seconds', consumer) as Histogram | undefined;
    expect(handlerDuration?.count).toBe(3);
    expect((valueOf(all, 'redis_streams_end_to_end_latency_seconds', consumer) as Histogram | undefined)?.count).toBe(2);
    expect(valueOf(all, 'redis_streams_pending_messages', { ...consumer, stream: keys.stream('payments.otel') })).toBe(0);
    expect(valueOf(all, 'redis_streams_in_flight_messages', { group: 'svc' })).toBe(0);
  });
});
