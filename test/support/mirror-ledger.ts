import type { Cluster, Redis } from 'ioredis';

/** Fields of a raw entry as a record (last value of a repeated field wins, as the library's reader does). */
export function fieldsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]] = list[i + 1];
  return out;
}

/** Writes `count` library-format messages to a stream with raw XADD; returns their entry ids in order. */
export async function produce(
  redis: Redis | Cluster,
  stream: string,
  pattern: string,
  from: number,
  count: number,
  keyOf: (n: number) => string = (n) => `k${n % 7}`,
): Promise<string[]> {
  const pipeline = redis.pipeline();
  for (let n = from; n < from + count; n++) {
    pipeline.xadd(stream, '*', 'v', '1', 'pattern', pattern, 'id', `m-${pattern}-${n}`, 'data', JSON.stringify({ n, key: keyOf(n) }), 'key', keyOf(n));
  }
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, id]) => {
    if (error) throw error;
    return String(id);
  });
}

/** What a target stream holds, per copy: its source id and origin region, and the payload's n (in stream order). */
export async function copiesIn(redis: Redis | Cluster, stream: string): Promise<{ originId: string; origin: string; n: number }[]> {
  const entries = await redis.xrange(stream, '-', '+');
  return entries
    .map(([, list]) => fieldsOf(list))
    .filter((f) => f['rse.origin'] !== undefined)
    .map((f) => ({ originId: f['rse.origin.id'], origin: f['rse.origin'], n: (JSON.parse(f.data) as { n: number }).n }));
}

/**
 * Compares the source ids a target stream holds with the source stream's ids: lost (in the source, never copied),
 * duplicated (copied more than once), and whether the copies are in source order.
 */
export function compareCopies(sourceIds: readonly string[], copiedIds: readonly string[]): { lost: number; duplicated: number; inOrder: boolean } {
  const seen = new Map<string, number>();
  for (const id of copiedIds) seen.set(id, (seen.get(id) ?? 0) + 1);
  const lost = sourceIds.filter((id) => !seen.has(id)).length;
  const duplicated = [...seen.values()].reduce((sum, times) => sum + (times - 1), 0);
  const position = new Map(sourceIds.map((id, i) => [id, i]));
  const order = copiedIds.map((id) => position.get(id) ?? -1);
  const inOrder = order.every((p, i) => i === 0 || p > order[i - 1]);
  return { lost, duplicated, inOrder };
}
