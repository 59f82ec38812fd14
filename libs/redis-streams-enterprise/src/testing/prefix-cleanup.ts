import type { Cluster, Redis } from 'ioredis';
import { keySlot } from '../cluster/key-slot.js';
import { isCluster } from '../connection/redis-connection.factory.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';

const SCAN_COUNT = 1_000;

/** Escapes the glob characters of SCAN MATCH, so a prefix matches only itself. */
function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}

/**
 * Deletes every key under `<keyPrefix>:` (SCAN + UNLINK; on a Redis Cluster, SCAN on every master and one UNLINK per
 * hash slot) and returns how many were deleted. Never FLUSHALL/FLUSHDB: other tests may share the server. Run it
 * after the apps using the prefix are closed, or a running consumer recreates its groups.
 * @throws InvalidOptionsError when `keyPrefix` is empty.
 */
export async function deleteKeysWithPrefix(redis: Redis | Cluster, keyPrefix: string): Promise<number> {
  if (keyPrefix.length === 0) {
    throw new InvalidOptionsError([{ path: 'keyPrefix', rule: 'notEmpty', message: 'deleteKeysWithPrefix needs a non-empty key prefix' }]);
  }
  const match = `${escapeGlob(keyPrefix)}:*`;
  const cluster = isCluster(redis) ? redis : undefined;
  let deleted = 0;
  // SCAN sees the keys of one server: on a Cluster each master holds only the keys of its slots.
  for (const node of cluster ? cluster.nodes('master') : [redis as Redis]) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
      cursor = next;
      if (keys.length === 0) continue;
      if (!cluster) {
        deleted += await node.unlink(...keys);
        continue;
      }
      // A multi-key command across hash slots fails with CROSSSLOT, even on one node.
      const bySlot = new Map<number, string[]>();
      for (const key of keys) {
        const slot = keySlot(key);
        const slotKeys = bySlot.get(slot);
        if (slotKeys) slotKeys.push(key);
        else bySlot.set(slot, [key]);
      }
      for (const slotKeys of bySlot.values()) deleted += await node.unlink(...slotKeys);
    } while (cursor !== '0');
  }
  return deleted;
}
