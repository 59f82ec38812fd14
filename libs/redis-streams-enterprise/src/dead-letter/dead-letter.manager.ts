import type { Cluster, Redis } from 'ioredis';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { parseEntry } from '../connection/redis-replies.js';
import { mergeById, pageThrough } from '../replay/replay-cursor.js';
import { streamsOfTopic } from '../partitioning/topic-streams.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { isCluster } from '../connection/redis-connection.factory.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { doorbellFor } from '../cluster/doorbell.js';
import { logIds } from '../observability/log-format.js';
import { AuditTrail, type AuditContext } from '../observability/audit-trail.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import { matches, rangeOf, toDeadLetter, type DeadLetter, type DeadLetterFilter } from './dead-letter.js';

/** Result of `DeadLetterManager.redrive`. */
export interface RedriveResult {
  /** Letters moved back to their stream: `{ dlqId, newId }`. */
  readonly redriven: readonly { readonly dlqId: string; readonly newId: string }[];
  /** Letters that matched but could not be redriven (their payload had been trimmed before dead-lettering). */
  readonly skipped: readonly string[];
}

const PAGE = 200;

/**
 * Operations on dead letters: list, count, inspect, delete and redrive them back to their stream.
 * Dead letters live in one stream per pattern (`<prefix>:{<pattern>}:dlq`); every method takes the pattern.
 *
 * Redrive is idempotent: each letter is moved back and removed from the dead-letter stream in one Lua script, so
 * running the same redrive twice (or two operators at once) cannot deliver a letter twice. The redriven message
 * keeps its message id and payload and is delivered only to the consumer group that gave up on it.
 *
 * ```ts
 * const letters = await deadLetters.list('orders.created', { reason: 'max-deliveries', from: yesterday });
 * await deadLetters.redrive('orders.created', { errorName: 'TimeoutError' });
 * ```
 */
@Injectable()
export class DeadLetterManager implements OnApplicationShutdown {
  private readonly logger = new Logger(DeadLetterManager.name);
  private readonly keys: StreamKeys;
  readonly config: ResolvedRedisStreamsConfig;
  private readonly connection: LazyConnection;
  /** Records redrive, purge and delete (compliance.audit). */
  private readonly audit: AuditTrail;

  constructor(@Inject(REDIS_STREAMS_OPTIONS) config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig) {
    this.config = resolveConfig(config);
    this.keys = new StreamKeys(this.config.streams.keyPrefix);
    this.connection = new LazyConnection(this.config.connection, 'dead-letters', 'DeadLetterManager');
    this.audit = new AuditTrail(this.config, () => this.redis());
  }

  /** Patterns that have a dead-letter stream (SCAN over this prefix; on Redis Cluster, per node). */
  async patterns(): Promise<string[]> {
    const redis = await this.redis();
    const found = new Set<string>();
    // SCAN sees the keys of one server: on a Cluster, scan every master (reads of a key are routed by the Cluster).
    const connection = redis as Redis | Cluster;
    for (const node of isCluster(connection) ? connection.nodes('master') : [redis]) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', this.keys.deadLetterGlob(), 'COUNT', 1_000);
        cursor = next;
        for (const key of keys) {
          const letters = await redis.xrange(key, '-', '+', 'COUNT', 1);
          const pattern = letters[0] ? parseEntry(letters[0])?.fields.pattern : undefined;
          if (pattern) found.add(pattern);
        }
      } while (cursor !== '0');
    }
    return [...found].sort();
  }

  /** Number of dead letters of a pattern (all of them, every partition; filters need `list`). */
  async count(pattern: string): Promise<number> {
    const redis = await this.redis();
    const lengths = await Promise.all((await this.deadLetterStreams(pattern)).map((key) => redis.xlen(key)));
    return lengths.reduce((a, b) => a + b, 0);
  }

  /** Dead letters of a pattern, oldest first, matching the filter; at most `limit` (default 100). */
  async list(pattern: string, filter: DeadLetterFilter & { limit?: number } = {}): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    const limit = filter.limit ?? 100;
    for await (const letter of this.scan(pattern, filter)) {
      out.push(letter);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** One dead letter by its id, or null. */
  async get(pattern: string, dlqId: string): Promise<DeadLetter | null> {
    const redis = await this.redis();
    for (const key of await this.deadLetterStreams(pattern)) {
      const [raw] = await redis.xrange(key, dlqId, dlqId);
      const entry = raw ? parseEntry(raw) : null;
      if (entry) return toDeadLetter(entry, key);
    }
    return null;
  }

  /**
   * Deletes dead letters by id; returns how many existed. On a partitioned topic the id is looked for in every
   * partition's dead-letter stream (ids are unique per stream; two partitions sharing one is very unlikely but
   * possible: use `purge` with a filter to be exact). Recorded in the audit trail (`by` names the actor).
   */
  async delete(pattern: string, dlqIds: readonly string[], by?: AuditContext): Promise<number> {
    if (dlqIds.length === 0) return 0;
    const work = async () => {
      const redis = await this.redis();
      let deleted = 0;
      for (const key of await this.deadLetterStreams(pattern)) deleted += await redis.xdel(key, ...dlqIds);
      return deleted;
    };
    return this.audit.around({ action: 'dlq.delete', target: { pattern }, params: { dlqIds } }, by, work, (deleted) => ({ deleted }));
  }

  /** Deletes every dead letter of a pattern that matches the filter; returns how many. Recorded in the audit trail. */
  async purge(pattern: string, filter: DeadLetterFilter = {}, by?: AuditContext): Promise<number> {
    const work = async () => {
      const redis = await this.redis();
      let deleted = 0;
      for await (const letter of this.scan(pattern, filter)) deleted += await redis.xdel(letter.dlqStream, letter.dlqId);
      return deleted;
    };
    return this.audit.around({ action: 'dlq.purge', target: { pattern }, params: { ...filter } }, by, work, (deleted) => ({ deleted }));
  }

  /**
   * Moves matching dead letters back to their stream, oldest first. Each is delivered again to the group that
   * dead-lettered it (other groups skip it), with a fresh delivery count. Recorded in the audit trail.
   */
  async redrive(pattern: string, filter: DeadLetterFilter & { limit?: number } = {}, by?: AuditContext): Promise<RedriveResult> {
    return this.audit.around({ action: 'dlq.redrive', target: { pattern }, params: { ...filter } }, by, () => this.redriveNow(pattern, filter), (r) => ({
      redriven: r.redriven.length,
      skipped: r.skipped.length,
    }));
  }

  private async redriveNow(pattern: string, filter: DeadLetterFilter & { limit?: number }): Promise<RedriveResult> {
    const redis = await this.redis();
    const redriven: { dlqId: string; newId: string; stream: string }[] = [];
    const skipped: string[] = [];
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    for await (const letter of this.scan(pattern, filter)) {
      if (redriven.length >= limit) break;
      // Back to the stream (or partition) it was dead-lettered from: the two share a hash slot.
      const stream = this.keys.streamOfDeadLetter(letter.dlqStream);
      const result = await redis.rseRedrive(letter.dlqStream, stream, this.keys.blobIndexOf(stream), letter.dlqId, letter.group);
      if (result === 'missing') skipped.push(letter.dlqId);
      else if (typeof result === 'string') redriven.push({ dlqId: letter.dlqId, newId: result, stream });
      // null: someone else redrove or deleted it meanwhile
    }
    if (redriven.length > 0) await doorbellFor(redis, this.keys, this.config.streams.doorbell)?.ringAndDrain(...new Set(redriven.map((r) => r.stream)));
    if (redriven.length > 0) this.logger.log(`Redrove ${redriven.length} dead letters ${logIds({ stream: this.keys.stream(pattern) })}`);
    return { redriven: redriven.map(({ dlqId, newId }) => ({ dlqId, newId })), skipped };
  }

  /** Closes the connection (called by Nest on shutdown). Idempotent. */
  async close(): Promise<void> {
    await this.connection.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /**
   * Pages through the dead-letter streams of a pattern (the same paging as replay; a partitioned topic's partitions
   * merged by time), yielding matching letters.
   */
  private async *scan(pattern: string, filter: DeadLetterFilter): AsyncGenerator<DeadLetter> {
    const redis = await this.redis();
    const { start, end } = rangeOf(filter);
    const sources = (await this.deadLetterStreams(pattern)).map((key) => pageThrough(redis, key, start, end, PAGE));
    for await (const entry of mergeById(sources)) {
      const letter = toDeadLetter(entry, entry.stream);
      if (matches(letter, filter)) yield letter;
    }
  }

  private async deadLetterStreams(pattern: string): Promise<string[]> {
    return (await streamsOfTopic(await this.redis(), this.keys, pattern)).map((stream) => this.keys.deadLetterOf(stream));
  }

  private redis(): Promise<ScriptedRedis> {
    return this.connection.get();
  }
}
