import { Cluster, Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { keySlot, type ClusterNodeAddress } from './redis-cluster.mjs';

/** A raw connection for assertions: a plain `Redis`, or a `Cluster` when the test file runs in the "cluster" project. */
export type RawRedis = Redis | Cluster;

/**
 * True when this test file runs in the "cluster" jest project (test/support/setup-cluster-target.ts): testConfig()
 * and rawRedis() then use the Redis Cluster of REDIS_CLUSTER_NODES instead of the single server of REDIS_URL.
 */
export function onCluster(): boolean {
  return process.env.RSE_TEST_TARGET === 'cluster';
}

/** URL of the Redis the tests use: REDIS_URL, or the server test/support/global-setup.ts started. */
export function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set: run the tests with `npm test` (global setup starts a redis-server)');
  return url;
}

/** Seed nodes of the cluster project's Redis Cluster: REDIS_CLUSTER_NODES, set by test/support/global-setup-cluster.mjs. */
export function redisClusterNodes(): ClusterNodeAddress[] {
  const list = process.env.REDIS_CLUSTER_NODES;
  if (!list) throw new Error('REDIS_CLUSTER_NODES is not set: run the cluster project with `npm test` (its global setup starts a Redis Cluster)');
  return list.split(',').map((address) => {
    const at = address.lastIndexOf(':');
    return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
  });
}

/** A key prefix no other test file or run shares. */
export function uniquePrefix(name: string): string {
  return `t-${name}-${randomUUID().slice(0, 8)}`;
}

/**
 * A plain connection for assertions on raw Redis state: to the test target (REDIS_URL, or on the cluster project the
 * whole Redis Cluster), or to the single server of `url`. Close it in afterAll.
 */
export function rawRedis(): RawRedis;
export function rawRedis(url: string): Redis;
export function rawRedis(url?: string): RawRedis {
  if (url === undefined && onCluster()) return new Cluster(redisClusterNodes(), { redisOptions: { maxRetriesPerRequest: 1 } });
  return new Redis(url ?? redisUrl(), { maxRetriesPerRequest: 1, lazyConnect: false });
}

/** The servers to SCAN: the one server, or every master of a cluster (each holds only the keys of its slots). */
async function scanTargets(redis: RawRedis): Promise<Redis[]> {
  if (!(redis instanceof Cluster)) return [redis];
  if (redis.status !== 'ready') await new Promise<void>((resolve, reject) => {
    redis.once('ready', resolve);
    redis.once('end', () => reject(new Error('the Redis Cluster connection closed before it was ready')));
  });
  return redis.nodes('master');
}

/** Every key that matches a glob pattern (SCAN on every master of a cluster). */
export async function keysMatching(redis: RawRedis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of await scanTargets(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
  }
  return found;
}

/** Deletes every key under a prefix (SCAN + UNLINK, on every master of a cluster); never FLUSHALL. */
export async function cleanupPrefix(redis: RawRedis, prefix: string): Promise<void> {
  for (const node of await scanTargets(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      if (!(redis instanceof Cluster)) {
        await node.unlink(...keys);
        continue;
      }
      // One UNLINK per hash slot: a cluster node refuses a multi-key command across slots (CROSSSLOT).
      const bySlot = new Map<number, string[]>();
      for (const key of keys) bySlot.set(keySlot(key), [...(bySlot.get(keySlot(key)) ?? []), key]);
      for (const slotKeys of bySlot.values()) await node.unlink(...slotKeys);
    } while (cursor !== '0');
  }
}
