import { BadRequestException, Get, Inject, Injectable, NotFoundException, Optional, Query } from '@nestjs/common';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { DeadLetterManager } from '../dead-letter/dead-letter.manager.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import { withinMs } from '../runtime/within-ms.js';
import { SchemaManager } from '../schema/schema.manager.js';
import { StreamMirror } from '../replication/stream-mirror.js';
import { PartitioningManager } from '../partitioning/partitioning.manager.js';
import { RedisStreamsServer } from '../transport/redis-streams.server.js';
import { ConsoleInspector, MAX_EVENT_TYPES, type ConsoleGroup } from './console-inspector.js';
import { clip, CONSOLE_LIMITS, limitParam, offsetParam, page, patternParam } from './console-input.js';
import { SecureHeaders } from './console-headers.js';
import { REDIS_STREAMS_CONSOLE_MIRROR, REDIS_STREAMS_CONSOLE_OPTIONS, type ConsoleMirrorSource, type ResolvedConsoleOptions } from './console.options.js';

/** Longest wait for the server's status in the overview (it asks Redis about every consumed stream). */
const STATUS_TIMEOUT_MS = 3_000;
/** Warnings and reasons shown, at most. */
const MAX_WARNINGS = 20;
/** Versions listed per event type, at most (the newest). */
const MAX_VERSIONS = 50;

const ownerKey = (topic: string, group: string, partition: number | null) => `${topic}\n${group}\n${partition}`;

/**
 * The console's read routes (GET): overview, topics, groups with their consumers, schema versions, mirror lag. Mounted
 * under the console's path by `RedisStreamsConsoleModule.register` (a subclass per registration carries the path).
 */
@Injectable()
export class ConsoleReadController {
  constructor(
    @Inject(REDIS_STREAMS_OPTIONS) private readonly config: ResolvedRedisStreamsConfig,
    @Inject(REDIS_STREAMS_CONSOLE_OPTIONS) private readonly options: ResolvedConsoleOptions,
    private readonly inspector: ConsoleInspector,
    @Optional() private readonly server?: RedisStreamsServer,
    @Optional() private readonly schemas?: SchemaManager,
    @Optional() private readonly deadLetters?: DeadLetterManager,
    @Optional() @Inject(REDIS_STREAMS_CONSOLE_MIRROR) private readonly mirrorSource?: ConsoleMirrorSource,
    @Optional() private readonly streamMirror?: StreamMirror,
    @Optional() private readonly partitioning?: PartitioningManager,
  ) {}

  /** The mirror shown: a REDIS_STREAMS_CONSOLE_MIRROR provider, else the module's StreamMirror. */
  private get mirror(): ConsoleMirrorSource | undefined {
    return this.mirrorSource ?? this.streamMirror;
  }

  /** What the page needs first: the prefix, whether writes are allowed and replay enabled, this app's server status. */
  @Get('api/overview')
  @SecureHeaders()
  async overview() {
    const status = await withinMs(this.server?.getStatus(), STATUS_TIMEOUT_MS);
    return {
      keyPrefix: this.config.streams.keyPrefix,
      writes: this.options.writes,
      replayEnabled: this.config.replay.enabled,
      server: this.server
        ? status
          ? {
              status: status.status, healthy: status.healthy, group: status.group, consumer: status.consumer, inFlight: status.inFlight,
              reasons: status.reasons.slice(0, MAX_WARNINGS).map((r) => clip(r)), warnings: status.warnings.slice(0, MAX_WARNINGS).map((w) => clip(w)),
            }
          : { status: 'unknown', healthy: false, reasons: [`the status took longer than ${STATUS_TIMEOUT_MS} ms`], warnings: [] }
        : null,
    };
  }

  /** Topics (a page, by pattern) with their partitions' lengths. */
  @Get('api/topics')
  @SecureHeaders()
  async topics(@Query('offset') offset?: string, @Query('limit') limit?: string) {
    const { topics, truncated } = await this.inspector.overview(await this.knownPatterns());
    const rows = topics.map((t) => ({ pattern: t.pattern, length: t.length, partitioned: t.partitioned, streams: t.streams.map((s) => ({ stream: s.stream, partition: s.partition, length: s.length, groups: s.groups.length })) }));
    return { ...page(rows, offsetParam(offset), limitParam(limit)), truncated };
  }

  /** Groups on every stream (a page) with lag, pending and their consumers' idle times; `topic` narrows to one topic. */
  @Get('api/groups')
  @SecureHeaders()
  async groups(@Query('topic') topic?: string, @Query('offset') offset?: string, @Query('limit') limit?: string) {
    const wanted = topic === undefined || topic === '' ? undefined : patternParam(topic, 'topic');
    const { topics, truncated } = await this.inspector.overview(await this.knownPatterns());
    const rows: ConsoleGroup[] = topics.filter((t) => wanted === undefined || t.pattern === wanted).flatMap((t) => t.streams.flatMap((s) => s.groups));
    const shown = page(rows, offsetParam(offset), limitParam(limit));
    const owners = await this.partitionOwners(shown.items);
    return { ...shown, items: shown.items.map((g) => ({ ...g, owner: owners.get(ownerKey(g.topic, g.group, g.partition)) ?? null })), truncated };
  }

  /**
   * Who holds each partition's lease, for the partitioned groups of a page (`PartitioningManager.getPartitionStats`,
   * only for topics whose layout exists: asked about a topic without one, the manager would create it).
   */
  private async partitionOwners(groups: readonly ConsoleGroup[]): Promise<Map<string, string | null>> {
    const owners = new Map<string, string | null>();
    if (!this.partitioning) return owners;
    const pairs = new Map(groups.filter((g) => g.partition !== null).map((g) => [`${g.topic}\n${g.group}`, g] as const));
    for (const { topic, group } of pairs.values()) {
      if (!(await this.inspector.hasLayout(topic))) continue;
      for (const stats of await this.partitioning.getPartitionStats(topic, group)) owners.set(ownerKey(topic, group, stats.partition), stats.owner);
    }
    return owners;
  }

  /** Event types with their schema versions (the latest first). */
  @Get('api/schemas')
  @SecureHeaders()
  async schemaList() {
    if (!this.schemas) return { available: false, eventTypes: [] };
    const names = new Set(await this.inspector.schemaEventTypes());
    for (const pattern of await this.knownPatterns()) if (names.size < MAX_EVENT_TYPES) names.add(pattern);
    const eventTypes = [];
    for (const eventType of [...names].sort()) {
      const versions = await this.schemas.listVersions(eventType).catch(() => [] as string[]);
      if (versions.length > 0) eventTypes.push({ eventType, versions: versions.slice(-MAX_VERSIONS).reverse(), count: versions.length });
    }
    return { available: true, registry: this.config.schema.registry, eventTypes };
  }

  /** One schema version's JSON Schema, as text (cut at maxFieldChars). */
  @Get('api/schemas/version')
  @SecureHeaders()
  async schemaVersion(@Query('eventType') eventType?: string, @Query('version') version?: string) {
    if (!this.schemas) throw new NotFoundException('No SchemaManager in this application');
    const type = patternParam(eventType, 'eventType');
    if (typeof version !== 'string' || version.length === 0 || version.length > 100) throw new BadRequestException('version must be a non-empty string of at most 100 characters');
    const found = await this.schemas.getSchema(type, version);
    if (!found) throw new NotFoundException(`No schema version ${version} of ${type}`);
    return { eventType: type, version, schema: clip(JSON.stringify(found.schema, null, 2), CONSOLE_LIMITS.maxFieldChars) };
  }

  /** The mirror's status (`configured: false` without one). */
  @Get('api/mirror')
  @SecureHeaders()
  async mirrorStatus() {
    if (!this.mirror) return { configured: false };
    const status = await this.mirror.getStatus();
    // The module's StreamMirror exists in every app; without replication.mirrors it mirrors nothing.
    if (status.topics.length === 0 && status.mirrors?.length === 0) return { configured: false };
    const topics = status.topics.slice(0, CONSOLE_LIMITS.maxPage).map((t) => ({
      mirror: t.mirror === undefined ? null : clip(String(t.mirror)), source: clip(String(t.source)), target: clip(String(t.target)),
      lag: t.lag === null ? null : Number(t.lag), copied: Number(t.copied), lastSourceId: t.lastSourceId === null ? null : clip(String(t.lastSourceId)),
    }));
    const mirrors = (status.mirrors ?? []).slice(0, CONSOLE_LIMITS.maxPage).map((m) => ({
      name: clip(String(m.name)), running: Boolean(m.running), failing: Boolean(m.failing), lastError: m.lastError === undefined ? null : clip(String(m.lastError)),
    }));
    return { configured: true, running: Boolean(status.running), region: status.region ?? null, mirrors, topics, more: Math.max(0, status.topics.length - topics.length) };
  }

  /** Patterns whose names a hashed key tag cannot tell: those this app consumes, and those with dead letters. */
  private async knownPatterns(): Promise<string[]> {
    const consumed = this.server ? [...this.server.getHandlers().keys()] : [];
    const dead = (await this.deadLetters?.patterns().catch(() => [] as string[])) ?? [];
    return [...new Set([...consumed, ...dead])].filter((p) => p.length > 0 && p.length <= 1_024);
  }
}
