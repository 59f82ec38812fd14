import { Redis } from 'ioredis';

/** A plain connection for inspecting and cleaning the demo's keys; fails fast instead of queueing. */
export function inspectionConnection(url: string): Redis {
  return new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => null });
}

async function* scanKeys(redis: Redis, prefix: string): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1_000);
    cursor = next;
    if (keys.length > 0) yield keys;
  } while (cursor !== '0');
}

/**
 * Entries of a consumer group that are still pending (delivered, not acknowledged) or not yet delivered (lag),
 * summed over every stream under the prefix. Found by scanning, so the demo does not depend on how the
 * library names its keys.
 */
export async function unfinishedEntries(
  redis: Redis,
  prefix: string,
  group: string,
): Promise<{ pending: number; lag: number | null; streams: number }> {
  let pending = 0;
  let lag: number | null = 0;
  let streams = 0;
  for await (const keys of scanKeys(redis, prefix)) {
    for (const key of keys) {
      if ((await redis.type(key)) !== 'stream') continue;
      streams++;
      const groups = (await redis.xinfo('GROUPS', key)) as unknown[];
      for (const raw of groups) {
        const info = toRecord(raw);
        if (info.name !== group) continue;
        pending += Number(info.pending ?? 0);
        // Redis reports lag as null when it cannot compute it (after deletions); keep "unknown" visible.
        lag = lag === null || info.lag === null || info.lag === undefined ? null : lag + Number(info.lag);
      }
    }
  }
  return { pending, lag, streams };
}

/** XINFO replies are flat [field, value, ...] arrays in RESP2 and maps in RESP3. */
function toRecord(raw: unknown): Record<string, unknown> {
  if (Array.isArray(raw)) {
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < raw.length; i += 2) out[String(raw[i])] = raw[i + 1];
    return out;
  }
  if (raw instanceof Map) return Object.fromEntries(raw);
  return typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
}

/** Deletes every key under `prefix:` with SCAN + UNLINK (never FLUSHALL/FLUSHDB). Returns how many were deleted. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  for await (const keys of scanKeys(redis, prefix)) deleted += await redis.unlink(...keys);
  return deleted;
}
