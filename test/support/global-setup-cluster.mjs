import { RedisCluster } from './redis-cluster.mjs';

/**
 * Global setup of the "cluster" jest project (jest runs it only when one of that project's suites runs): starts one
 * 3-master Redis Cluster for the whole run, unless REDIS_CLUSTER_NODES (`host:port,host:port,...`) names one to use.
 * Each test file isolates itself with a unique key prefix, as on the single server.
 */
export default async function globalSetupCluster() {
  if (process.env.REDIS_CLUSTER_NODES) return;
  const cluster = await RedisCluster.start({ masters: 3 });
  process.env.REDIS_CLUSTER_NODES = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
  globalThis.__rseRedisCluster = cluster;
}
