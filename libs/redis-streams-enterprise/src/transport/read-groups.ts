import { createRequire } from 'node:module';

/** Redis Cluster hash slot of a key (cluster-key-slot, the function ioredis routes with; it ships no types). */
export const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

/**
 * Streams that one XREADGROUP may read together: all of them on a single server; on a Redis Cluster, those of one
 * hash slot (a multi-key command across slots fails with CROSSSLOT), ordered by slot.
 */
export function readGroups(streams: readonly string[], cluster: boolean): { name: string; streams: string[] }[] {
  if (!cluster || streams.length === 0) return [{ name: '', streams: [...streams] }];
  const bySlot = new Map<number, string[]>();
  for (const stream of streams) {
    const slot = keySlot(stream);
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), stream]);
  }
  return [...bySlot.entries()].sort(([a], [b]) => a - b).map(([slot, group]) => ({ name: `.slot${slot}`, streams: group }));
}
