import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { MirrorOptions } from '../config/replication.options.js';
import { blockingRead } from '../connection/blocking-read.js';
import { createRedisConnection, disconnectOnce, isCluster, waitUntilReady } from '../connection/redis-connection.factory.js';
import { redact } from '../connection/redis-error-codes.js';
import { parseMirrorAppendReply, parseMirrorCheckpoint, parseRawReadReply, parseStreamInfo, type RawStreamEntry } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { MirrorRefusedError } from '../errors/mirror-refused.error.js';
import { errorText, escapeControl, logIds } from '../observability/log-format.js';
import { BackgroundLoop, doublingBackoff } from '../runtime/background-loop.js';
import { buildMirrorBatch, chunksAtBlobs } from './mirror-batch.js';
import { MirrorDiscovery, type MirroredStreamKeys } from './mirror-discovery.js';
import { MirrorStream, type MirroredStreamStatus } from './mirror-stream.js';

/** State of one mirror (`StreamMirror.getStatus().mirrors`). */
export interface MirrorLinkStatus {
  readonly name: string;
  readonly sourceRegion: string;
  readonly running: boolean;
  /** True while steps fail (the source or this region unreachable, ...); `lastError` says why. */
  readonly failing: boolean;
  readonly lastError?: string;
  /** Topics found in the source but not copied, with why (a partition layout that differs). */
  readonly refused: readonly { readonly topic: string; readonly reason: string }[];
  readonly topics: readonly MirroredStreamStatus[];
}

/**
 * One mirror: copies the matching streams of a source region into this region, in steps. A step reads a batch of each
 * stream after its checkpoint (one blocking XREAD over all of them on a standalone source; one XREAD per stream,
 * without blocking, on a Cluster), then writes each stream's batch with its new checkpoint in one script call, and only
 * then reads again: at most `batchSize` entries per stream are in memory or in flight, and a slow target slows the
 * reading instead of filling a buffer. A refused or failed write makes the stream reload its checkpoint from this
 * region before it is read again, so what was written (or not) is always taken from Redis, never assumed.
 */
export class MirrorLink {
  private readonly logger = new Logger(MirrorLink.name);
  private readonly sourceKeys: StreamKeys;
  private readonly targetKeys: StreamKeys;
  private readonly discovery: MirrorDiscovery;
  private readonly streams = new Map<string, MirrorStream>();
  private readonly refused = new Map<string, string>();
  private readonly loop: BackgroundLoop;
  /** This region's command connection (shared by the mirrors; opened on first use, retried while it fails). */
  private target!: ScriptedRedis;
  private sourceCommand?: Redis;
  private sourceBlocking?: Redis;
  private nextDiscoveryAt = 0;
  private nextLagAt = 0;
  private warnedMaxStreams = false;

  constructor(
    readonly options: MirrorOptions,
    private readonly connectTarget: () => Promise<ScriptedRedis>,
    targetPrefix: string,
    private readonly lagIntervalMs: number,
  ) {
    this.sourceKeys = new StreamKeys(options.source.keyPrefix ?? targetPrefix);
    this.targetKeys = new StreamKeys(targetPrefix);
    this.discovery = new MirrorDiscovery(options.topics, this.sourceKeys, this.targetKeys);
    this.loop = new BackgroundLoop(() => this.step(), {
      intervalMs: 0,
      retryMs: doublingBackoff(100, 5_000),
      onFailing: (error) => this.logger.warn(`Mirror "${options.name}" from region ${options.source.region} is failing, retrying: ${escapeControl(errorText(error))}`),
      onRecovered: () => this.logger.log(`Mirror "${options.name}" from region ${options.source.region} recovered`),
    });
  }


  /**
   * Connects to both regions, finds the topics and starts copying. A region that cannot be reached now does not fail
   * the start: the mirror reports itself failing (`status().failing`, `lastError`) and keeps trying, as after any
   * outage later on.
   * @throws MirrorRefusedError when a matching topic's partition layout differs between the regions.
   */
  async start(): Promise<void> {
    const { connection } = this.options.source;
    const name = `mirror.${this.options.name}`;
    this.sourceCommand = createRedisConnection(connection, 'command', name);
    this.sourceCommand.on('error', () => undefined); // failures surface as rejected commands, reported by the loop
    if (!isCluster(this.sourceCommand)) {
      this.sourceBlocking = createRedisConnection(connection, 'blocking', name);
      this.sourceBlocking.on('error', () => undefined);
    }
    try {
      await this.connect();
      await this.discover();
    } catch (error) {
      this.logger.warn(`Mirror "${this.options.name}" cannot reach a region yet, retrying: ${escapeControl(errorText(error))}`);
    }
    if (this.refused.size > 0) throw new MirrorRefusedError(this.options.name, this.refusedList());
    this.logger.log(`Mirror "${this.options.name}" copies ${this.streams.size} stream(s) from region ${this.options.source.region}`);
    this.loop.start();
  }

  /**
   * Opens the connections on first use; from then on ioredis reconnects them by itself (with backoff, forever, until
   * close()). Fails at once, naming the source, while the source's command connection is not ready.
   */
  private async connect(): Promise<void> {
    this.target = await this.connectTarget();
    for (const redis of [this.sourceCommand, this.sourceBlocking]) {
      if (redis?.status === 'wait') redis.connect().catch(() => undefined); // the failure shows as 'not ready' below
    }
    const source = this.sourceCommand!;
    if (source.status === 'ready') return;
    try {
      await waitUntilReady(source, this.options.blockMs);
    } catch {
      throw new Error(`the source region ${this.options.source.region} cannot be reached at ${redact(this.options.source.connection.url)} (connection ${source.status})`);
    }
  }

  /** Stops after the step in progress (its write completes or fails, so the checkpoint stays exact). Idempotent. */
  async close(): Promise<void> {
    const stopped = this.loop.stop();
    // A blocking read on an idle source would hold stop() for up to blockMs: end it (the step then fails, harmlessly).
    if (this.sourceBlocking) disconnectOnce(this.sourceBlocking);
    await stopped;
    for (const redis of [this.sourceCommand, this.sourceBlocking]) {
      if (redis && redis.status !== 'end') await redis.quit().catch(() => disconnectOnce(redis));
    }
  }

  status(): MirrorLinkStatus {
    const health = this.loop.health();
    return {
      name: this.options.name,
      sourceRegion: this.options.source.region,
      running: this.loop.isRunning,
      failing: health.failures > 0,
      ...(health.failures > 0 ? { lastError: errorText(health.lastError) } : {}),
      refused: this.refusedList(),
      topics: [...this.streams.values()].map((s) => s.status()),
    };
  }

  private refusedList(): { topic: string; reason: string }[] {
    return [...this.refused].map(([topic, reason]) => ({ topic, reason }));
  }

  private async step(): Promise<void> {
    await this.connect();
    const now = Date.now();
    if (now >= this.nextDiscoveryAt) await this.discover();
    if (now >= this.nextLagAt) await this.refreshLag();
    await Promise.all([...this.streams.values()].filter((s) => !s.isLoaded).map((s) => this.load(s)));
    const batches = await this.read();
    if (batches.length === 0) return;
    const results = await Promise.allSettled(batches.map(({ stream, entries }) => this.write(stream, entries)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Adds the matching streams the source has now (a new topic, a new partition) after checking their layout. */
  private async discover(): Promise<void> {
    const source = this.sourceCommand!;
    const found = await this.discovery.scan(source);
    const checkedTags = new Map<string, string | undefined>();
    for (const keys of found) {
      if (this.streams.has(keys.source)) continue;
      if (!checkedTags.has(keys.tag)) checkedTags.set(keys.tag, await this.discovery.layoutProblem(source, this.target, keys.tag));
      const problem = checkedTags.get(keys.tag);
      if (problem !== undefined) {
        if (!this.refused.has(keys.tag)) this.logger.error(`Mirror "${this.options.name}" does not copy topic ${escapeControl(keys.tag)}: ${escapeControl(problem)}`);
        this.refused.set(keys.tag, problem);
        continue;
      }
      this.refused.delete(keys.tag);
      if (this.streams.size >= this.options.maxStreams) {
        if (!this.warnedMaxStreams) this.logger.warn(`Mirror "${this.options.name}" reached maxStreams (${this.options.maxStreams}); further streams are not copied`);
        this.warnedMaxStreams = true;
        break;
      }
      this.add(keys);
    }
    this.nextDiscoveryAt = Date.now() + this.options.discoveryIntervalMs;
  }

  private add(keys: MirroredStreamKeys): void {
    const checkpoint = this.targetKeys.mirrorCheckpointOf(keys.target, this.options.source.region);
    this.streams.set(keys.source, new MirrorStream(keys, checkpoint, this.options.name));
  }

  /** Takes a stream's checkpoint from this region (a new stream starts where `startFrom` says). */
  private async load(stream: MirrorStream): Promise<void> {
    const checkpoint = parseMirrorCheckpoint(await this.target.hgetall(stream.checkpointKey));
    const info = await this.sourceInfo(stream);
    if (checkpoint) {
      stream.resume(checkpoint);
      return this.observe(stream, info);
    }
    if (this.options.startFrom === 'beginning') {
      stream.startAtBeginning(info);
      return this.observe(stream, info);
    }
    // 'end': the position is stored at once, so entries added while a restarted mirror was down are not skipped.
    const start = info?.lastGeneratedId ?? '0-0';
    const reply = parseMirrorAppendReply(await this.target.rseMirrorAppend(2, stream.target, stream.checkpointKey, '', start, String(info?.entriesAdded ?? 0), '0', '', ''));
    if (reply.outcome === 'ok') stream.startAtEnd(start, info?.entriesAdded ?? null);
  }

  private async sourceInfo(stream: MirrorStream): Promise<ReturnType<typeof parseStreamInfo> | undefined> {
    try {
      return parseStreamInfo(await this.sourceCommand!.xinfo('STREAM', stream.source));
    } catch (error) {
      // The stream may be gone (deleted, or the source restarted without persistence): no counters to report.
      if (error instanceof Error && /no such key/i.test(error.message)) return undefined;
      throw error;
    }
  }

  private async refreshLag(): Promise<void> {
    const streams = [...this.streams.values()];
    const infos = await Promise.all(streams.map((s) => this.sourceInfo(s)));
    streams.forEach((s, i) => this.observe(s, infos[i]));
    this.nextLagAt = Date.now() + this.lagIntervalMs;
  }

  private observe(stream: MirrorStream, info: ReturnType<typeof parseStreamInfo> | undefined): void {
    const missed = stream.observeSource(info);
    if (missed > 0) {
      this.logger.error(
        `Mirror "${this.options.name}": at least ${missed} entries of the source were deleted (trimmed) before they were copied; ` +
          `they are lost for this region (keep the source's retention above the longest outage): ${logIds({ stream: stream.source })}`,
      );
    }
  }

  /** One batch per stream that has new entries (empty after blockMs without any). */
  private async read(): Promise<{ stream: MirrorStream; entries: RawStreamEntry[] }[]> {
    const ready = [...this.streams.values()].filter((s) => s.isLoaded);
    if (ready.length === 0) {
      await this.loop.sleep(this.options.blockMs);
      return [];
    }
    const { batchSize, blockMs } = this.options;
    let replies: ReturnType<typeof parseRawReadReply>;
    if (this.sourceBlocking) {
      const redis = this.sourceBlocking;
      const args = ['COUNT', batchSize, 'BLOCK', blockMs, 'STREAMS', ...ready.map((s) => s.source), ...ready.map((s) => s.readAfter)] as const;
      const raw = await blockingRead(redis, () => redis.xread(...(args as unknown as Parameters<Redis['xread']>)), blockMs + this.options.source.connection.blockingWatchdogMs);
      replies = parseRawReadReply(raw);
    } else {
      // A Cluster cannot read streams of several slots in one command, and one blocking read per stream would take a
      // connection each: read every stream without blocking, and pause when none had anything.
      const source = this.sourceCommand!;
      const raws = await Promise.all(ready.map((s) => source.xread('COUNT', batchSize, 'STREAMS', s.source, s.readAfter)));
      replies = raws.flatMap((raw) => parseRawReadReply(raw));
      if (replies.every((r) => r.entries.length === 0)) await this.loop.sleep(blockMs);
    }
    const batches: { stream: MirrorStream; entries: RawStreamEntry[] }[] = [];
    for (const { stream: key, entries } of replies) {
      const stream = this.streams.get(key);
      if (stream && entries.length > 0) batches.push({ stream, entries });
    }
    return batches;
  }

  /** Writes what was read of one stream, a claim-checked entry (and its blob) at a time at most. */
  private async write(stream: MirrorStream, entries: RawStreamEntry[]): Promise<void> {
    for (const chunk of chunksAtBlobs(entries)) {
      await this.writeChunk(stream, chunk);
      if (!stream.isLoaded) return; // refused: the rest is read again after the checkpoint is reloaded
    }
  }

  /** Writes entries and the new checkpoint in one script call (compare-and-set on the checkpoint). */
  private async writeChunk(stream: MirrorStream, entries: RawStreamEntry[]): Promise<void> {
    const batch = buildMirrorBatch(entries, this.options.source.region);
    const lastId = entries[entries.length - 1].id;
    for (const { id, reason } of batch.rejected) {
      this.logger.error(`Mirror "${this.options.name}" cannot copy an entry (${reason}); it is skipped: ${logIds({ stream: stream.source, id })}`);
    }
    const ordinal = stream.ordinalAfter(entries.length);
    try {
      const blob = batch.blobId === undefined ? null : await this.sourceCommand!.get(this.sourceKeys.blobOf(stream.source, batch.blobId));
      if (batch.blobId !== undefined && blob === null) {
        // Gone in the source too (swept after its entry was trimmed): the copy refers to nothing, as the original does.
        this.logger.warn(`Mirror "${this.options.name}" copies a claim-checked entry whose payload is gone: ${logIds({ stream: stream.source, id: lastId })}`);
      }
      const keys = [stream.target, stream.checkpointKey];
      if (batch.blobId !== undefined && blob !== null) keys.push(this.targetKeys.blobIndexOf(stream.target), this.targetKeys.blobOf(stream.target, batch.blobId));
      const raw = await this.target.rseMirrorAppend(
        keys.length, ...keys, stream.stored, lastId, String(ordinal ?? ''), String(batch.copied), blob === null ? '' : batch.blobId!, blob ?? '', ...batch.args,
      );
      const reply = parseMirrorAppendReply(raw);
      if (reply.outcome === 'ok') return stream.advance(lastId, entries.length, reply.copied, batch);
      // Someone else moved the checkpoint (a second mirror, or this write re-sent after a lost reply): reload it.
      this.logger.warn(`Mirror "${this.options.name}" found the checkpoint moved; reloading it: ${logIds({ stream: stream.target, id: reply.storedId })}`);
      stream.unload();
    } catch (error) {
      stream.unload(); // the write may or may not have happened: the checkpoint in Redis says which
      throw error;
    }
  }
}
