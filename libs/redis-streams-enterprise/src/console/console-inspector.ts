import type { Cluster, Redis } from 'ioredis';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { isCluster } from '../connection/redis-connection.factory.js';
import { parseConsumersInfo, parseEntry, parseGroupsInfo, parseStreamInfo } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { streamsOfTopic } from '../partitioning/topic-streams.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';

/** One consumer of a group, as the console shows it. */
export interface ConsoleConsumer {
  readonly name: string;
  readonly pending: number;
  readonly idleMs: number;
  readonly inactiveMs: number | null;
}

/** One consumer group on one stream. */
export interface ConsoleGroup {
  readonly topic: string;
  readonly stream: string;
  readonly partition: number | null;
  readonly group: string;
  readonly pending: number;
  readonly lag: number | null;
  readonly lastDeliveredId: string;
  readonly consumerCount: number;
  /** At most MAX_CONSUMERS_LISTED of them. */
  readonly consumers: readonly ConsoleConsumer[];
}

/** One stream (a topic's plain stream or one of its partitions). */
export interface ConsoleStream {
  readonly stream: string;
  readonly partition: number | null;
  readonly length: number;
  readonly groups: readonly ConsoleGroup[];
}

/** A topic: a pattern's stream and partitions. */
export interface ConsoleTopic {
  readonly pattern: string;
  readonly length: number;
  readonly partitioned: boolean;
  readonly streams: readonly ConsoleStream[];
}

/** What one look at Redis found. */
export interface ConsoleOverview {
  readonly topics: readonly ConsoleTopic[];
  /** More streams exist than MAX_STREAMS: the list is incomplete. */
  readonly truncated: boolean;
}

/** Streams looked at, at most (a prefix with more shows the first ones found, and says so). */
export const MAX_STREAMS = 500;
/** Consumers listed per group, at most. */
export const MAX_CONSUMERS_LISTED = 100;
/** Schema event types listed, at most. */
export const MAX_EVENT_TYPES = 200;

/** Escapes the glob characters of SCAN MATCH. */
const globEscape = (text: string) => text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/**
 * The console's read-only view of Redis: the streams under the key prefix (SCAN ... TYPE stream, on every master of a
 * Cluster), their length, groups (lag, pending) and consumers (idle time), with XINFO. Its own lazily opened command
 * connection, closed on shutdown. Nothing here writes.
 */
@Injectable()
export class ConsoleInspector implements OnApplicationShutdown {
  private readonly keys: StreamKeys;
  private readonly connection: LazyConnection;
  /** Looks under way, by the patterns they name (at most a few: one per distinct set of known patterns). */
  private readonly looking = new Map<string, Promise<ConsoleOverview>>();

  constructor(@Inject(REDIS_STREAMS_OPTIONS) config: ResolvedRedisStreamsConfig) {
    this.keys = new StreamKeys(config.streams.keyPrefix);
    this.connection = new LazyConnection(config.connection, 'console', 'RedisStreamsConsole');
  }

  get prefix(): string {
    return this.keys.prefix;
  }

  /**
   * Every topic under the prefix (at most MAX_STREAMS streams), sorted by pattern.
   * @param knownPatterns patterns whose names a hashed key tag cannot tell (object patterns, long names).
   */
  overview(knownPatterns: readonly string[] = []): Promise<ConsoleOverview> {
    // The page asks for topics and groups at once: requests made while a look is under way share it (one SCAN).
    const key = knownPatterns.join('\n');
    const running = this.looking.get(key);
    if (running) return running;
    const look = this.look(knownPatterns).finally(() => this.looking.delete(key));
    this.looking.set(key, look);
    return look;
  }

  private async look(knownPatterns: readonly string[]): Promise<ConsoleOverview> {
    const redis = await this.connection.get();
    const { streams, truncated } = await this.scanStreams(redis);
    const names = new Map<string, string>();
    for (const pattern of knownPatterns) names.set(this.keys.tagOf(pattern), pattern);
    const byTopic = new Map<string, ConsoleStream[]>();
    const described = await Promise.all(streams.map(async ({ key, tag, partition }) => {
      const pattern = names.get(tag) ?? (await this.patternOfTag(redis, key, tag));
      names.set(tag, pattern);
      return { pattern, stream: await this.describe(redis, pattern, key, partition) };
    }));
    for (const { pattern, stream } of described) byTopic.set(pattern, [...(byTopic.get(pattern) ?? []), stream]);
    const topics = [...byTopic].map(([pattern, list]) => {
      const sorted = list.sort((a, b) => (a.partition ?? -1) - (b.partition ?? -1));
      return { pattern, length: sorted.reduce((n, s) => n + s.length, 0), partitioned: sorted.some((s) => s.partition !== null), streams: sorted };
    });
    return { topics: topics.sort((a, b) => (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0)), truncated };
  }

  /** True when the topic has a partition layout (so reading its partition statistics writes nothing). */
  async hasLayout(pattern: string): Promise<boolean> {
    return (await (await this.connection.get()).exists(this.keys.layout(pattern))) === 1;
  }

  /** Entries stored in every stream of a topic (its plain stream and partitions). */
  async topicLength(pattern: string): Promise<number> {
    const redis = await this.connection.get();
    const lengths = await Promise.all((await streamsOfTopic(redis, this.keys, pattern)).map((s) => redis.xlen(s)));
    return lengths.reduce((a, b) => a + b, 0);
  }

  /**
   * Event types with schemas in the Redis registry under this prefix whose names the keys tell (readable names; a
   * hashed one is found only when the console asks for it by name, e.g. as a topic's pattern), at most MAX_EVENT_TYPES.
   */
  async schemaEventTypes(): Promise<string[]> {
    const redis = await this.connection.get();
    const found = new Set<string>();
    const glob = `${globEscape(this.keys.prefix)}:{schema:*}:order`;
    await this.scan(redis, glob, undefined, (key) => {
      const tag = key.slice(`${this.keys.prefix}:{schema:`.length, -'}:order'.length);
      if (this.keys.tagOf(tag) === tag) found.add(tag);
      return found.size < MAX_EVENT_TYPES;
    });
    return [...found].sort();
  }

  /** Closes the connection. Idempotent. */
  async close(): Promise<void> {
    await this.connection.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** The stream keys of this prefix: `<prefix>:{<tag>}` and `<prefix>:{<tag>#<n>}` (not reply streams, not the doorbell). */
  private async scanStreams(redis: ScriptedRedis): Promise<{ streams: { key: string; tag: string; partition: number | null }[]; truncated: boolean }> {
    const start = `${this.keys.prefix}:{`;
    const streams: { key: string; tag: string; partition: number | null }[] = [];
    const complete = await this.scan(redis, `${globEscape(start)}*}`, 'stream', (key) => {
      if (!key.startsWith(start) || !key.endsWith('}')) return true;
      const inner = key.slice(start.length, -1);
      if (inner.startsWith('reply:') || inner.startsWith('#') || inner.includes('}')) return true;
      const part = /^(.+)#(\d+)$/.exec(inner);
      if (streams.length >= MAX_STREAMS) return false;
      streams.push(part ? { key, tag: part[1], partition: Number(part[2]) } : { key, tag: inner, partition: null });
      return true;
    });
    return { streams, truncated: !complete };
  }

  /** SCAN over every master; `visit` returns false to stop. Returns false when stopped early. */
  private async scan(redis: ScriptedRedis, glob: string, type: string | undefined, visit: (key: string) => boolean): Promise<boolean> {
    const connection = redis as Redis | Cluster;
    for (const node of isCluster(connection) ? connection.nodes('master') : [redis as Redis]) {
      let cursor = '0';
      do {
        const [next, keys] = type
          ? await node.scan(cursor, 'MATCH', glob, 'COUNT', 1_000, 'TYPE', type)
          : await node.scan(cursor, 'MATCH', glob, 'COUNT', 1_000);
        cursor = next;
        for (const key of keys) if (!visit(key)) return false;
      } while (cursor !== '0');
    }
    return true;
  }

  /**
   * The pattern of a key tag: the tag itself when it is a readable pattern; for a hashed tag, the `pattern` field of the
   * newest entry when it hashes to the tag, else the tag as it is.
   */
  private async patternOfTag(redis: ScriptedRedis, key: string, tag: string): Promise<string> {
    if (!/^h\.[0-9a-f]{32}$/.test(tag)) return tag;
    const [newest] = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
    const candidate = newest ? parseEntry(newest)?.fields.pattern : undefined;
    try {
      if (candidate && this.keys.tagOf(candidate) === tag) return candidate;
    } catch {
      // an invalid pattern in the entry: it names nothing, the tag is shown instead
    }
    return tag;
  }

  /** Length, groups and consumers of one stream (XINFO STREAM, GROUPS, CONSUMERS); a stream deleted meanwhile is empty. */
  private async describe(redis: ScriptedRedis, topic: string, stream: string, partition: number | null): Promise<ConsoleStream> {
    try {
      const [info, rawGroups] = await Promise.all([redis.xinfo('STREAM', stream), redis.xinfo('GROUPS', stream)]);
      const groups = await Promise.all(parseGroupsInfo(rawGroups).map(async (g): Promise<ConsoleGroup> => {
        const consumers = parseConsumersInfo(await redis.xinfo('CONSUMERS', stream, g.name));
        return {
          topic, stream, partition, group: g.name, pending: g.pending, lag: g.lag, lastDeliveredId: g.lastDeliveredId,
          consumerCount: consumers.length, consumers: consumers.slice(0, MAX_CONSUMERS_LISTED),
        };
      }));
      return { stream, partition, length: parseStreamInfo(info).length, groups };
    } catch (error) {
      if (/no such key/i.test(String((error as Error)?.message))) return { stream, partition, length: 0, groups: [] };
      throw error;
    }
  }
}
