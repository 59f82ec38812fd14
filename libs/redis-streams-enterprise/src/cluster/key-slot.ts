import { createRequire } from 'node:module';

/** Redis Cluster hash slot of a key (cluster-key-slot, the function ioredis routes with; it ships no types). */
export const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;
