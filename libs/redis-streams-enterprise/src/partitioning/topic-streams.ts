import type { Redis } from 'ioredis';
import type { StreamKeys } from '../connection/stream-keys.js';
import { parseLayout, readablePartitions } from './partition-layout.js';

/**
 * Every stream a topic's messages may be in: its plain stream (used while it is not partitioned), and, once it has a
 * partition layout, each partition of it. Operators' tools (replay, dead letters) read all of them.
 */
export async function streamsOfTopic(redis: Redis, keys: StreamKeys, pattern: string): Promise<string[]> {
  const layout = parseLayout(await redis.get(keys.layout(pattern)), pattern);
  const streams = [keys.stream(pattern)];
  if (layout) for (let p = 0; p < readablePartitions(layout); p++) streams.push(keys.partition(pattern, p));
  return streams;
}
