import type { INestMicroservice, Provider, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  RedisConfigFactory,
  RedisStreamsClient,
  RedisStreamsEnterpriseModule,
  RedisStreamsExceptionFilter,
  RedisStreamsServer,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { onCluster, redisClusterNodes, redisUrl } from './redis.js';

/**
 * Test defaults: fast retries and claims so failure paths finish in well under a second. The connection is the test
 * target: REDIS_URL, or in the "cluster" jest project the Redis Cluster of REDIS_CLUSTER_NODES.
 */
export function testConfig(prefix: string, overrides: RedisStreamsEnterpriseConfig = {}): RedisStreamsEnterpriseConfig {
  return RedisConfigFactory.createCustomConfig(
    {
      connection: onCluster() ? { cluster: { nodes: redisClusterNodes() } } : { url: redisUrl() },
      streams: { keyPrefix: prefix },
      consumer: { group: 'svc', blockMs: 200, claimIdleMs: 1_000, reclaimIntervalMs: 100, shutdownTimeoutMs: 2_000 },
      retry: { attempts: 3, backoff: { type: 'fixed', delayMs: 50, maxDelayMs: 50, jitter: 0 } },
      client: { requestTimeoutMs: 5_000 },
    },
    overrides,
  );
}

/** Boots a real Nest microservice with the module and the given controllers/providers, listening on Redis. */
export async function startConsumer(
  config: RedisStreamsEnterpriseConfig,
  controllers: Type[],
  providers: Provider[] = [],
): Promise<{ app: INestMicroservice; server: RedisStreamsServer; client: RedisStreamsClient }> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisStreamsEnterpriseModule.forRoot(config)],
    controllers,
    providers,
  }).compile();
  const server = moduleRef.get(RedisStreamsServer);
  const app = moduleRef.createNestMicroservice({ strategy: server });
  app.useLogger(['error']);
  app.useGlobalFilters(new RedisStreamsExceptionFilter());
  await app.listen();
  return { app, server, client: moduleRef.get(RedisStreamsClient) };
}
