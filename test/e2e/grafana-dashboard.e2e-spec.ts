import { readFileSync } from 'node:fs';
import { Controller, Inject, Injectable, type INestApplication } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Registry } from 'prom-client';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer, RedisStreamsRecord, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { scrape, startMeteredHttpApp } from '../support/metered-http-app.js';
import type { PromSample } from '../support/prometheus.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

const dashboardPath = new URL('../../deploy/grafana/redis-streams.json', import.meta.url);

interface Dashboard {
  panels: { type: string; title: string; targets?: { expr: string }[] }[];
  templating: { list: { name: string; definition?: string }[] };
}

/** Every `redis_streams_*` series name a PromQL expression reads. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bredis_streams_[a-z_]+/g)].map((m) => m[0]);
}

@Injectable()
class Seen {
  readonly ids: string[] = [];
}

@Controller()
class ShipmentsController {
  constructor(@Inject(Seen) private readonly seen: Seen) {}

  @StreamEvent('shipments.dashboard')
  handle(@Payload() data: { id: string }) {
    this.seen.ids.push(data.id);
  }
}

describe('Grafana dashboard deploy/grafana/redis-streams.json (real Redis)', () => {
  const prefix = uniquePrefix('grafana');
  const registry = new Registry();
  const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as Dashboard;
  let redis: RawRedis;
  let app: INestApplication;
  let metricsUrl: string;

  beforeAll(async () => {
    redis = rawRedis();
    // Partitioned topics, so that the partition gauges exist too.
    const config = testConfig(prefix, {
      partitioning: { enabled: true, partitionCount: 2 },
      observability: { metrics: { prometheus: true, registry, gaugeCacheMs: 0 } },
    });
    ({ app, metricsUrl } = await startMeteredHttpApp(config, registry, [ShipmentsController], [Seen]));
  });

  afterAll(async () => {
    await app?.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('queries only metrics that a real scrape of a running app shows', async () => {
    const queried = new Set<string>();
    for (const panel of dashboard.panels) for (const target of panel.targets ?? []) for (const name of metricNames(target.expr)) queried.add(name);
    for (const variable of dashboard.templating.list) for (const name of metricNames(variable.definition ?? '')) queried.add(name);
    // Throughput, latency, lag, pending, dead letters and reclaims are all on the dashboard.
    for (const needed of ['messages_acked_total', 'handler_duration_seconds_bucket', 'end_to_end_latency_seconds_bucket', 'consumer_lag_messages', 'pending_messages', 'dead_letter_messages', 'messages_reclaimed_total']) {
      expect(queried).toContain(`redis_streams_${needed}`);
    }

    const client = app.get(RedisStreamsClient);
    await lastValueFrom(client.emit('shipments.dashboard', new RedisStreamsRecord({ id: 's-1' }, { partitionKey: 'k-1' })));
    await waitFor(() => app.get(Seen).ids.includes('s-1'), { message: 's-1 handled' });
    await waitFor(() => app.get(RedisStreamsServer).ownedPartitions().length === 2, { message: 'both partitions owned' });
    let samples: PromSample[] = [];
    const missing = () => [...queried].filter((name) => !samples.some((s) => s.name === name));
    await waitFor(async () => {
      samples = await scrape(metricsUrl);
      return missing().length === 0;
    }, { message: 'every queried metric in the scrape', timeoutMs: 5_000 }).catch(() => undefined);
    expect(missing()).toEqual([]);
  });
});
