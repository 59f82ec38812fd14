import { Controller, Inject, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Cluster } from 'ioredis';
import { createRequire } from 'node:module';
import { lastValueFrom } from 'rxjs';
import {
  PartitioningManager,
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsRecordBuilder,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { RedisCluster } from '../support/redis-cluster.mjs';
import { cleanupPrefix, uniquePrefix } from '../support/redis.js';
import { beside, testKeys } from '../support/keys.js';
import { checkPerKeyOrder, range } from '../support/ledger.js';
import { waitFor } from '../support/wait-for.js';

const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;
const LOG = Symbol('LOG');

interface Handled {
  readonly key: string;
  readonly n: number;
  readonly partition: number | undefined;
}

@Controller()
class OrderedController {
  constructor(@Inject(LOG) private readonly log: Handled[]) {}

  @StreamEvent('cl.ordered')
  async onOrdered(@Payload() data: { key: string; n: number; crossSlot?: string }, @Ctx() ctx: RedisStreamsContext) {
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 2)));
    // The effect lives in the partition's hash slot, so it commits atomically with the acknowledgement.
    ctx.transaction().call('HINCRBY', beside(ctx.getStream(), 'totals'), data.key, 1);
    if (data.crossSlot) ctx.transaction().call('SET', data.crossSlot, '1');
    this.log.push({ key: data.key, n: data.n, partition: ctx.getPartition() });
  }
}

describe('ordering, partitioning and exactly-once on Redis Cluster (3 local masters)', () => {
  const prefix = uniquePrefix('cluster-ordered');
  const keys = testKeys(prefix);
  const apps: INestMicroservice[] = [];
  const log: Handled[] = [];
  let cluster: RedisCluster;
  let raw: Cluster;
  let config: RedisStreamsEnterpriseConfig;
  let client: RedisStreamsClient;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    raw = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    config = testConfig(prefix, {
      connection: { cluster: { nodes: cluster.nodes } },
      partitioning: { enabled: true, strategy: 'dynamic', partitionCount: 4, maxPartitions: 16, partitionKey: 'key', sessionTimeoutMs: 1_500 },
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'key', maxConcurrency: 16, retryAttempts: 2 },
      exactlyOnce: { enabled: true },
      consumer: { batchSize: 16 },
    });
    client = new RedisStreamsClient(config);
    for (let i = 0; i < 2; i++) {
      const started = await startConsumer(config, [OrderedController], [{ provide: LOG, useValue: log }]);
      apps.push(started.app);
    }
  }, 30_000);

  afterAll(async () => {
    await client?.close();
    await Promise.all(apps.map((app) => app.close()));
    if (raw) {
      await cleanupPrefix(raw, prefix);
      raw.disconnect();
    }
    await cluster?.stop();
  }, 30_000);

  it('partitions spread over slots; per-key order, nothing lost or doubled, across a change of partition count', async () => {
    const slots = new Set(Array.from({ length: 4 }, (_, p) => keySlot(keys.partition('cl.ordered', p))));
    expect(slots.size).toBeGreaterThan(1);
    const admin = new PartitioningManager(config);
    try {
      const send = async (from: number, to: number) => {
        const pending: Promise<unknown>[] = [];
        for (let n = from; n < to; n++) for (let k = 0; k < 20; k++) pending.push(lastValueFrom(client.emit('cl.ordered', { key: `k${k}`, n })));
        await Promise.all(pending);
      };
      await send(0, 30);
      await admin.scalePartitions('cl.ordered', 8);
      await send(30, 60);
      await waitFor(() => log.length >= 1_200, { timeoutMs: 60_000 });
      // Per key, exactly 0..59 once each, in order (20 keys, nothing else).
      const order = checkPerKeyOrder(
        log,
        range(0, 60).flatMap((n) => range(0, 20).map((k) => ({ key: `k${k}`, n }))),
      );
      if (order.outOfOrder.length + order.wrongCount.length > 0) {
        for (let p = 0; p < 8; p++) {
          const entries = await raw.xrange(keys.partition('cl.ordered', p), '-', '+');
          const k0 = entries.filter(([, f]) => f.includes('data')).map(([, f]) => JSON.parse(f[f.indexOf('data') + 1])).filter((d) => d.key === 'k0').map((d) => d.n);
          if (k0.length) console.log('stored k0 in', p, JSON.stringify(k0));
        }
        console.log(JSON.stringify(log.filter((h) => h.key === 'k0')));
      }
      expect(order).toEqual({ outOfOrder: [], wrongCount: [], total: 1_200 });
      // Each transaction committed exactly once, in the partition's own slot.
      let total = 0;
      for (let p = 0; p < 8; p++) {
        const totals = await raw.hgetall(keys.beside(keys.partition('cl.ordered', p), 'totals'));
        total += Object.values(totals).reduce((sum, v) => sum + Number(v), 0);
      }
      expect(total).toBe(1_200);
    } finally {
      await admin.close();
    }
  }, 90_000);

  it('a transaction writing into another slot is refused (TransactionCrossSlotError), retried, then dead-lettered', async () => {
    const before = log.length;
    await lastValueFrom(client.emit('cl.ordered', new RedisStreamsRecordBuilder({ key: 'x', n: 0, crossSlot: 'elsewhere:{other}' }).build()));
    const letters = async () => {
      let count = 0;
      for (let p = 0; p < 8; p++) count += await raw.xlen(keys.deadLetterOf(keys.partition('cl.ordered', p)));
      return count;
    };
    await waitFor(async () => (await letters()) === 1, { timeoutMs: 10_000 });
    expect(await raw.exists('elsewhere:{other}')).toBe(0);
    expect(log.length - before).toBe(2); // two attempts (ordering.retryAttempts), none committed
  }, 30_000);
});
