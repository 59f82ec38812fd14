export default async function globalTeardownCluster() {
  await globalThis.__rseRedisCluster?.stop();
}
