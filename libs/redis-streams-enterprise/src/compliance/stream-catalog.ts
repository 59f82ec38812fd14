import type { Cluster, Redis } from 'ioredis';
import { isCluster } from '../connection/redis-connection.factory.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { InvalidUsageError } from '../errors/invalid-usage.error.js';

/** One stream of a prefix that holds messages: a topic's stream, one of its partitions, or a dead-letter stream. */
export interface CatalogStream {
  readonly key: string;
  readonly kind: 'live' | 'dead-letter';
  /** The stream a dead-letter stream belongs to (the key itself for a live stream). */
  readonly owner: string;
  /**
   * The pattern of the topic, when the key names it (patterns of safe characters are their own hash tag); undefined
   * for hashed tags (`h.<hex>`): entries then name their pattern in their `pattern` field.
   */
  readonly pattern?: string;
  /** Partition number, for a partition stream (`{<tag>#<n>}`). */
  readonly partition?: number;
}

const SCAN_COUNT = 1_000;
/** Keys of at most this many streams are listed; a prefix with more is refused (the caller narrows by topic). */
export const MAX_CATALOG_STREAMS = 100_000;
const HASHED_TAG = /^h\.[0-9a-f]{32}$/;

/**
 * Classifies a key of the prefix: a message stream (`<prefix>:{<tag>}`, `<prefix>:{<tag>#<n>}`, each with an optional
 * `:dlq`), or null for anything else (reply streams, the doorbell, the audit trail, other keys' suffixes). Keys come
 * from SCAN, so from Redis: they are parsed, never trusted.
 */
export function classifyKey(keys: StreamKeys, key: string): CatalogStream | null {
  const start = `${keys.prefix}:{`;
  if (!key.startsWith(start)) return null;
  const rest = key.slice(start.length);
  const close = rest.indexOf('}');
  if (close <= 0) return null;
  const tag = rest.slice(0, close);
  const suffix = rest.slice(close + 1);
  if (suffix !== '' && suffix !== ':dlq') return null;
  // `#` starts the library's own keys (doorbell, audit, consumer leases); `reply:` names reply streams.
  if (tag.startsWith('#') || tag.startsWith('reply:') || tag.startsWith('schema:') || tag.startsWith('causal:')) return null;
  const partitioned = /^(.+)#(\d{1,6})$/.exec(tag);
  const base = partitioned ? partitioned[1] : tag;
  const owner = suffix === ':dlq' ? key.slice(0, -':dlq'.length) : key;
  let pattern: string | undefined;
  try {
    pattern = !HASHED_TAG.test(base) && keys.tagOf(base) === base ? base : undefined;
  } catch {
    pattern = undefined; // not a pattern this library could have named a stream after
  }
  return {
    key,
    kind: suffix === ':dlq' ? 'dead-letter' : 'live',
    owner,
    ...(pattern === undefined ? {} : { pattern }),
    ...(partitioned ? { partition: Number(partitioned[2]) } : {}),
  };
}

/**
 * Every message stream of the prefix (SCAN ... TYPE stream; on a Redis Cluster, on every master), sorted by key.
 * @throws InvalidUsageError when the prefix holds more than MAX_CATALOG_STREAMS streams.
 */
export async function catalogStreams(redis: Redis | Cluster, keys: StreamKeys): Promise<CatalogStream[]> {
  const found = new Map<string, CatalogStream>();
  for (const node of isCluster(redis) ? redis.nodes('master') : [redis]) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', keys.allKeysGlob(), 'COUNT', SCAN_COUNT, 'TYPE', 'stream');
      cursor = next;
      for (const key of batch) {
        const stream = classifyKey(keys, key);
        if (stream) found.set(key, stream);
      }
      if (found.size > MAX_CATALOG_STREAMS) {
        throw new InvalidUsageError(`the prefix "${keys.prefix}" holds more than ${MAX_CATALOG_STREAMS} streams; name the topics to search`);
      }
    } while (cursor !== '0');
  }
  return [...found.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
