/*
 * nestjs-redis-streams-enterprise/testing on a Redis Cluster (3 local masters, started here): RedisStreamsTestHarness
 * settles messages of a partitioned topic whose partitions live on different masters, and cleanup() deletes the
 * prefix's keys on every master (one UNLINK per hash slot) and nothing else.
 */
import { Controller, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { Cluster } from 'ioredis';
import { RedisStreamsEnterpriseModule, RedisStreamsServer, StreamEvent, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { RedisStreamsTestHarness, testKeyPrefix } from 'nestjs-redis-streams-enterprise/testing';
import { RedisCluster } from '../support/redis-cluster.mjs';
import { keysMatching } from '../support/redis.js';
import { testKeys } from '../support/keys.js';

@Controller()
class ClusterHarnessController {
  @StreamEvent('cluster.harness')
  handle(@Payload() data: { fail: boolean }) {
    if (data.fail) throw new Error('fails on purpose');
  }
}

describe('RedisStreamsTestHarness on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let raw: Cluster;
  let app: INestMicroservice | undefined;
  let harness: RedisStreamsTestHarness | undefined;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    raw = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  }, 30_000);

  afterAll(async () => {
    await app?.close();
    await harness?.close();
    raw?.disconnect();
    await cluster?.stop();
  });

  it('settles messages in partitions on different masters, then cleans up every master', async () => {
    const config: RedisStreamsEnterpriseConfig = {
      connection: { cluster: { nodes: cluster.nodes } },
      streams: { keyPrefix: testKeyPrefix('cluster') },
      consumer: { group: 'harness', blockMs: 200, reclaimIntervalMs: 50, shutdownTimeoutMs: 2_000 },
      retry: { attempts: 1 },
      partitioning: { enabled: true, partitionCount: 6 },
    };
    const moduleRef = await Test.createTestingModule({
      imports: [RedisStreamsEnterpriseModule.forRoot(config)],
      controllers: [ClusterHarnessController],
    }).compile();
    app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(RedisStreamsServer), logger: false });
    await app.listen();
    harness = RedisStreamsTestHarness.fromApp(app, { timeoutMs: 10_000 });
    const other = testKeys(testKeyPrefix('cluster-other')).stream('kept');
    await raw.set(other, '1');

    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => harness!.emitAndWait('cluster.harness', { fail: i % 3 === 0 })));

    expect(results.map((r) => r.outcome)).toEqual(Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? 'dead-lettered' : 'handled')));
    const streams = new Set(results.map((r) => r.stream));
    const masters = new Set(await Promise.all([...streams].map(async (stream) => (await cluster.masterOf(stream)).port)));
    expect(masters.size).toBeGreaterThan(1); // the test proves something only if the partitions are spread

    await app.close();
    const written = await keysMatching(raw, `${harness.keyPrefix}:*`);
    expect(written.length).toBeGreaterThan(streams.size);
    expect(await harness.cleanup()).toBe(written.length);
    expect(await keysMatching(raw, `${harness.keyPrefix}:*`)).toEqual([]);
    expect(await raw.exists(other)).toBe(1);
    await raw.del(other);
  }, 30_000);
});
