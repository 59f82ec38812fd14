import type { Redis } from 'ioredis';
import { DEAD_LETTER, SCHEDULE_RETRY, CLAIM_DUE, RECLAIM_IDLE, EXTEND_CLAIMS, REMOVE_IDLE_CONSUMERS, COMMIT } from './scripts/settle.scripts.js';
import { PUBLISH, PUBLISH_BATCH, SEND_REPLY, DROP_BLOBS } from './scripts/publish.scripts.js';
import { REDRIVE, REPLAY_COPY, REGISTER_SCHEMA } from './scripts/operator.scripts.js';
import { ACQUIRE_LEASE, RENEW_LEASE, RELEASE_LEASE, HEARTBEAT, CLOSE_EPOCH, SWAP_LAYOUT } from './scripts/partitions.scripts.js';
import { RETENTION } from './scripts/retention.scripts.js';
import { MIRROR_APPEND } from './scripts/mirror.scripts.js';

/*
 * Every Lua script of the library, registered here and written in scripts/ (one file per area). Each declares all
 * keys it touches in KEYS (ACL checks and Redis Cluster routing depend on that) and every key of one script shares
 * one hash tag (see stream-keys.ts). Time inside scripts comes from the Redis server's clock (TIME), so producers'
 * and consumers' clocks never matter. No Lua lives anywhere else.
 */
const SCRIPTS = {
  rseDeadLetter: { numberOfKeys: 5, lua: DEAD_LETTER },
  rseScheduleRetry: { numberOfKeys: 3, lua: SCHEDULE_RETRY },
  rseRedrive: { numberOfKeys: 3, lua: REDRIVE },
  rseClaimDue: { numberOfKeys: 2, lua: CLAIM_DUE },
  rseReclaimIdle: { numberOfKeys: 3, lua: RECLAIM_IDLE },
  rseExtendClaims: { numberOfKeys: 1, lua: EXTEND_CLAIMS },
  rseSendReply: { numberOfKeys: 1, lua: SEND_REPLY },
  rseRemoveIdleConsumers: { numberOfKeys: 1, lua: REMOVE_IDLE_CONSUMERS },
  rseReplayCopy: { numberOfKeys: 2, lua: REPLAY_COPY },
  rseRegisterSchema: { numberOfKeys: 2, lua: REGISTER_SCHEMA },
  rsePublish: { numberOfKeys: 6, lua: PUBLISH },
  rseAcquireLease: { numberOfKeys: 2, lua: ACQUIRE_LEASE },
  rseRenewLease: { numberOfKeys: 1, lua: RENEW_LEASE },
  rseReleaseLease: { numberOfKeys: 1, lua: RELEASE_LEASE },
  rseHeartbeat: { numberOfKeys: 1, lua: HEARTBEAT },
  rseCloseEpoch: { numberOfKeys: 2, lua: CLOSE_EPOCH },
  rseSwapLayout: { numberOfKeys: 1, lua: SWAP_LAYOUT },
  rseRetention: { numberOfKeys: 1, lua: RETENTION },
  // Variable key count: the first argument is the number of keys.
  rseCommit: { numberOfKeys: undefined, lua: COMMIT },
  rseDropBlobs: { numberOfKeys: undefined, lua: DROP_BLOBS },
  rseMirrorAppend: { numberOfKeys: undefined, lua: MIRROR_APPEND },
  rsePublishBatch: { numberOfKeys: undefined, lua: PUBLISH_BATCH },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptArg = string | number | Buffer;

/** A connection with the library's scripts defined on it (EVALSHA, falling back to EVAL after a Redis restart). */
export type ScriptedRedis = Redis & { [K in ScriptName]: (...args: ScriptArg[]) => Promise<unknown> };

/** Defines every script on a connection; idempotent per connection. */
export function defineScripts(redis: Redis): ScriptedRedis {
  for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
  }
  return redis as ScriptedRedis;
}
