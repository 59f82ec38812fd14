import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';

/** URL of the Redis the tests use: REDIS_URL, or the server test/support/global-setup.ts started. */
export function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set: run the tests with `npm test` (global setup starts a redis-server)');
  return url;
}

/** A key prefix no other test file or run shares. */
export function uniquePrefix(name: string): string {
  return `t-${name}-${randomUUID().slice(0, 8)}`;
}

/** A plain connection for assertions on raw Redis state. Close it in afterAll. */
export function rawRedis(url = redisUrl()): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
}

/** Deletes every key under a prefix (SCAN + UNLINK); never FLUSHALL. */
export async function cleanupPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
