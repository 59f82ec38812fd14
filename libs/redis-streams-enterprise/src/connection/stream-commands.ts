/**
 * The narrow command port of the consume pipeline: just the Redis operations the ack batcher, the settler and the
 * pending reclaimer send, named by what they do, with typed replies. `RedisStreamCommands` implements it over the
 * ioredis command connection (scripts.ts); unit specs implement it with fakes, so each part of the pipeline is
 * tested without Redis. New entries are read through the consumer loop's own port (EntryReader, consumer-loop.ts),
 * since a blocking read needs a connection of its own.
 */
import type { Cluster, Redis } from 'ioredis';
import { parseClaimReply, type ClaimResult } from './redis-replies.js';
import { waitUntilReady } from './redis-connection.factory.js';
import type { ScriptedRedis } from './scripts.js';

/** Outcome of a commit (see the commit script in scripts.ts). */
export type CommitOutcome = 'ok' | 'duplicate' | 'fenced' | 'gone';

/** The keys of a group's retry bookkeeping for one stream (one hash tag). */
export interface RetryKeys {
  readonly stream: string;
  /** The group's retry schedule (sorted set: entry id by due time). */
  readonly retrySchedule: string;
  /** The group's first-failure times (hash: entry id -> ms). */
  readonly failures: string;
}

/** The keys the dead-letter script touches (one hash tag). */
export interface DeadLetterKeys extends RetryKeys {
  readonly deadLetter: string;
  /** Blob index of the dead-letter stream (claim-checked payloads it references). */
  readonly deadLetterBlobIndex: string;
}

export interface StreamCommands {
  /** XACK: acknowledges `ids`; resolves with how many were still pending. */
  ack(stream: string, group: string, ids: readonly string[]): Promise<number>;
  /** True once the connection was closed for good (quit, disconnect): a command that failed will not get through. */
  isClosed(): boolean;
  /** Resolves once the connection is ready (again); rejects when it ends, or after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<void>;
  /** HDEL of an entry's first-failure time (a retried entry that succeeded). */
  forgetFailure(failures: string, id: string): Promise<void>;
  /** scheduleRetry script: true when scheduled, false when the entry is no longer pending on `consumer`. */
  scheduleRetry(keys: RetryKeys, group: string, consumer: string, id: string, delayMs: number): Promise<boolean>;
  /**
   * deadLetter script: moves a pending entry to the dead-letter stream with `metadata` (field/value pairs) and
   * acknowledges it, atomically. Resolves with the dead letter's id, or null when the entry was no longer pending.
   */
  deadLetter(keys: DeadLetterKeys, group: string, id: string, maxLen: number, metadata: readonly string[]): Promise<string | null>;
  /** commit script: `keys` and `args` in its KEYS/ARGV order. */
  commit(keys: readonly string[], args: readonly (string | number)[]): Promise<CommitOutcome>;
  /** extendClaims script: resets the idle time of entries `consumer` still owns; resolves with how many it touched. */
  extendClaims(stream: string, group: string, consumer: string, ids: readonly string[]): Promise<number>;
  /** claimDue script: takes up to `count` entries whose scheduled retry is due. */
  claimDue(stream: string, retrySchedule: string, group: string, consumer: string, count: number): Promise<ClaimResult>;
  /**
   * reclaimIdle script: takes up to `count` entries idle for `minIdleMs` that wait for no retry, scanning from
   * `cursor`; `owner` ('' = anyone's) limits it to one consumer's entries.
   */
  reclaimIdle(
    stream: string,
    retrySchedule: string,
    group: string,
    consumer: string,
    minIdleMs: number,
    count: number,
    cursor: string,
    owner: string,
  ): Promise<ClaimResult>;
  /** removeIdleConsumers script: drops consumers idle `idleMs` that own nothing (never `except`); their names. */
  removeIdleConsumers(stream: string, group: string, idleMs: number, except: string): Promise<string[]>;
}

/** StreamCommands over the library's command connection (scripts defined, see defineScripts). */
export class RedisStreamCommands implements StreamCommands {
  constructor(private readonly redis: ScriptedRedis) {}

  async ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
    return Number(await this.redis.xack(stream, group, ...ids));
  }

  isClosed(): boolean {
    return this.redis.status === 'end';
  }

  whenReady(timeoutMs: number): Promise<void> {
    return waitUntilReady(this.redis, timeoutMs);
  }

  async forgetFailure(failures: string, id: string): Promise<void> {
    await this.redis.hdel(failures, id);
  }

  async scheduleRetry(keys: RetryKeys, group: string, consumer: string, id: string, delayMs: number): Promise<boolean> {
    return Number(await this.redis.rseScheduleRetry(keys.stream, keys.retrySchedule, keys.failures, group, consumer, id, delayMs)) === 1;
  }

  async deadLetter(keys: DeadLetterKeys, group: string, id: string, maxLen: number, metadata: readonly string[]): Promise<string | null> {
    const dlqId = await this.redis.rseDeadLetter(
      keys.stream,
      keys.deadLetter,
      keys.retrySchedule,
      keys.failures,
      keys.deadLetterBlobIndex,
      group,
      id,
      maxLen,
      ...metadata,
    );
    return dlqId ? String(dlqId) : null; // Lua false (no longer pending) arrives as null
  }

  async commit(keys: readonly string[], args: readonly (string | number)[]): Promise<CommitOutcome> {
    return (await this.redis.rseCommit(keys.length, ...keys, ...args)) as CommitOutcome;
  }

  async extendClaims(stream: string, group: string, consumer: string, ids: readonly string[]): Promise<number> {
    return Number(await this.redis.rseExtendClaims(stream, group, consumer, ...ids));
  }

  async claimDue(stream: string, retrySchedule: string, group: string, consumer: string, count: number): Promise<ClaimResult> {
    return parseClaimReply(await this.redis.rseClaimDue(stream, retrySchedule, group, consumer, count), stream);
  }

  async reclaimIdle(
    stream: string,
    retrySchedule: string,
    group: string,
    consumer: string,
    minIdleMs: number,
    count: number,
    cursor: string,
    owner: string,
  ): Promise<ClaimResult> {
    const raw = await this.redis.rseReclaimIdle(stream, retrySchedule, stream, group, consumer, minIdleMs, count, cursor, owner, '');
    return parseClaimReply(raw, stream);
  }

  async removeIdleConsumers(stream: string, group: string, idleMs: number, except: string): Promise<string[]> {
    return ((await this.redis.rseRemoveIdleConsumers(stream, group, idleMs, except)) as unknown[]).map(String);
  }
}

/** True for an ioredis connection (single server or Cluster), false for another StreamCommands (a fake). */
export function isRedisConnection(target: StreamCommands | Redis | Cluster): target is Redis | Cluster {
  return typeof (target as Partial<Redis>).sendCommand === 'function';
}

/**
 * The port itself, or an adapter over a command connection (the server's, with the library's scripts defined): parts
 * of the pipeline accept either.
 */
export function asStreamCommands(target: StreamCommands | Redis): StreamCommands {
  return isRedisConnection(target) ? new RedisStreamCommands(target as ScriptedRedis) : target;
}
