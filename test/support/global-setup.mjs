import { RedisProcess } from './redis-process.mjs';

/**
 * Starts one throw-away redis-server for the whole run (each test file isolates itself with a unique key prefix),
 * unless REDIS_URL points at a server to use instead. Tests that kill or restart Redis start their own.
 */
export default async function globalSetup() {
  if (process.env.REDIS_URL) return;
  const redis = await RedisProcess.start();
  process.env.REDIS_URL = redis.url;
  globalThis.__rseRedis = redis;
}
