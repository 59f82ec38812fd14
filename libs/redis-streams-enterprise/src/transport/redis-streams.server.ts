import { Logger } from '@nestjs/common';
import { Server, type CustomTransportStrategy, type MessageHandler } from '@nestjs/microservices';
import type { Redis } from 'ioredis';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { connectOrThrow, createRedisConnection, disconnectOnce, isCluster } from '../connection/redis-connection.factory.js';
import { classifyRedisError, redact } from '../connection/redis-error-codes.js';
import type { StreamEntry } from '../connection/redis-replies.js';
import { defineScripts, type ScriptedRedis } from '../connection/scripts.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { ConnectionClosedError } from '../errors/connection-closed.error.js';
import { errorText, logIds } from '../observability/log-format.js';
import { TransportMetrics, type RedisStreamsMetricsSnapshot } from '../observability/metrics.js';
import { REDIS_STREAMS_TRANSPORT, RedisStreamsStatus } from '../redis-streams.constants.js';
import { AckBatcher } from './ack-batcher.js';
import { BLOB_SWEEP_INTERVAL_MS, BlobSweeper, claimCheckApplies } from './claim-check.js';
import { BlockingEntryReader, ConsumerLoop } from './consumer-loop.js';
import { DoorbellListener } from '../cluster/doorbell.js';
import { ClusterEntryReader, MultiSlotReader } from '../cluster/multi-slot-reader.js';
import { enabledFeatures } from './features.js';
import { InFlight } from './in-flight.js';
import { MessageProcessor } from './message-processor.js';
import { PendingReclaimer } from './pending-reclaimer.js';
import { Settler } from './settler.js';
import { SchemaManager } from '../schema/schema.manager.js';
import { PartitioningManager } from '../partitioning/partitioning.manager.js';
import type { Partitioner } from '../partitioning/partitioner.js';
import { PartitionedConsumer } from '../partitioning/partitioned-consumer.js';
import { readablePartitions } from '../partitioning/partition-layout.js';
import { OrderingManager } from '../ordering/ordering.manager.js';
import type { RedisStreamsContext } from './redis-streams.context.js';
import { streamStatus, type RedisStreamsServerStatus } from './server-status.js';
import { withinMs } from './within-ms.js';

export type { RedisStreamsServerStatus, StreamStatus } from './server-status.js';

type ProcessingHooksRunner = (context: unknown, fn: (runEndHook: () => void) => Promise<void>) => Promise<void>;

/**
 * Nest microservice server over Redis Streams consumer groups.
 *
 * One stream per pattern, one consumer group per service (`consumer.group`), competing consumers inside a group;
 * every group receives every message. Entries are acknowledged only after their handler succeeded; failures are
 * retried with backoff and finally dead-lettered; entries of consumers that died are reclaimed.
 *
 * ```ts
 * const app = await NestFactory.createMicroservice(AppModule, { strategy: new RedisStreamsServer({ connection: { url } }) });
 * // or, with RedisStreamsEnterpriseModule imported: app.connectMicroservice({ strategy: app.get(RedisStreamsServer) })
 * ```
 */
export class RedisStreamsServer extends Server implements CustomTransportStrategy {
  /** Event handler failures reach this transport (it awaits them to decide ack, retry or dead-letter). */
  readonly propagatesEventHandlerErrors = true;
  protected readonly logger = new Logger(RedisStreamsServer.name);

  readonly config: ResolvedRedisStreamsConfig;
  private readonly keys: StreamKeys;
  private readonly metrics = new TransportMetrics();
  private readonly inFlight: InFlight;
  private readonly listeners: [string, (...args: unknown[]) => void][] = [];
  private command?: ScriptedRedis;
  /** The reading connection (blocking reads on a single server; slot reads on a Cluster). */
  private blocking?: Redis;
  private loop?: ConsumerLoop;
  /** Redis Cluster only: the doorbell listener and its own connection (cluster/doorbell.ts). */
  private doorbell?: { connection: Redis; listener: DoorbellListener };
  private reclaimer?: PendingReclaimer;
  private acks?: AckBatcher;
  private processor?: MessageProcessor;
  private schemas?: SchemaManager;
  /** The module's SchemaManager (its registry, its counts); closed by the module, not by the server. */
  private readonly injectedSchemas?: SchemaManager;
  private readonly partitioning: PartitioningManager;
  readonly ordering: OrderingManager;
  /** Partitioned topics (partitioning or ordering enabled): coordinator, reader and ordered dispatcher. */
  private partitioned?: PartitionedConsumer;
  private trimTimer?: NodeJS.Timeout;
  private blobSweeper?: BlobSweeper;
  private streams: { pattern: string; stream: string; retrySchedule: string }[] = [];
  private state = RedisStreamsStatus.Disconnected;
  private readonly handlerCache = new Map<string, MessageHandler>();
  /** Nest's no-op start hook, to tell whether anyone installed a real one. */
  private readonly defaultStartHook: unknown;
  private closing?: Promise<void>;

  /**
   * @param config the same configuration as `RedisStreamsEnterpriseModule.forRoot`; validated here.
   * @throws InvalidOptionsError listing every invalid field.
   */
  constructor(
    config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig = {},
    providers: { readonly partitioner?: Partitioner; readonly ordering?: OrderingManager; readonly schemas?: SchemaManager } = {},
  ) {
    super();
    this.config = resolveConfig(config);
    this.keys = new StreamKeys(this.config.streams.keyPrefix);
    // The server's own manager uses the server's connection; the injected one (module) serves users.
    this.partitioning = new PartitioningManager(this.config, providers.partitioner, () => this.commandConnection());
    this.ordering = providers.ordering ?? new OrderingManager(this.config);
    this.injectedSchemas = providers.schemas;
    this.inFlight = new InFlight(this.partitioning.enabled ? this.ordering.maxConcurrency : this.config.consumer.concurrency);
    this.transportId = REDIS_STREAMS_TRANSPORT;
    this.defaultStartHook = (this as unknown as { onProcessingStartHook?: unknown }).onProcessingStartHook;
    this.initializeSerializer(undefined);
    this.initializeDeserializer(undefined);
  }

  /** Connects, creates the consumer groups and starts reading. Called by Nest. */
  async listen(callback: (error?: unknown, ...info: unknown[]) => void): Promise<void> {
    try {
      await this.start();
      callback();
    } catch (error) {
      await this.shutdownConnections();
      callback(error);
    }
  }

  /**
   * Stops reading, waits for in-flight handlers (up to `consumer.shutdownTimeoutMs`), flushes their acks and closes
   * the connections. Entries whose handlers did not finish stay pending and are reclaimed by other consumers.
   * Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  /** Registers a listener for events of the underlying ioredis connections (`error`, `ready`, `reconnecting`, ...). */
  on<EventKey extends string = string, EventCallback extends Function = Function>(event: EventKey, callback: EventCallback): void {
    const listener = callback as unknown as (...args: unknown[]) => void;
    this.listeners.push([event, listener]);
    this.command?.on(event, listener);
    for (const conn of this.readingConnections()) conn.on(event, listener);
  }

  private readingConnections(): Redis[] {
    return [this.blocking, this.doorbell?.connection].filter((c): c is Redis => c !== undefined);
  }

  /**
   * The ioredis connections: `[command, blocking]` (on a Redis Cluster, both are ioredis `Cluster` instances).
   */
  unwrap<T>(): T {
    if (!this.command || !this.blocking) {
      throw new Error('Not initialized: call listen() (app.listen or startAllMicroservices) before unwrap()');
    }
    return [this.command, this.blocking] as T;
  }

  /** Counters, throughput, error rate and handler latency percentiles of this server. */
  getMetrics(): RedisStreamsMetricsSnapshot {
    return this.metrics.snapshot(this.inFlight.size);
  }

  /** Health, connection states, per-stream pending and lag of this group (XINFO GROUPS), enabled features. */
  async getStatus(): Promise<RedisStreamsServerStatus> {
    const { group, consumerName } = this.config.consumer;
    const base = {
      status: this.state,
      redis: {
        command: this.command?.status ?? 'none',
        blocking: this.readingConnections().find((c) => c.status !== 'ready')?.status ?? this.blocking?.status ?? 'none',
      },
      group,
      consumer: consumerName,
      inFlight: this.inFlight.size,
      features: enabledFeatures(this.config),
    };
    const live =
      this.state === RedisStreamsStatus.Connected &&
      this.command?.status === 'ready' &&
      this.blocking !== undefined &&
      this.readingConnections().every((c) => c.status === 'ready') &&
      (this.loop?.isRunning ?? this.partitioned?.isRunning ?? false);
    try {
      const streams = await Promise.all(this.streams.map((s) => streamStatus(this.commandConnectionSync(), this.config, s.pattern, s.stream)));
      return { ...base, healthy: live, streams, warnings: streams.flatMap((s) => s.warnings) };
    } catch (error) {
      return { ...base, healthy: false, streams: [], warnings: [], error: redact(errorText(error)) };
    }
  }

  /**
   * Hands one stored entry to its event handler again, as a replay (used by `ReplayManager`).
   * @throws Error when the server is not listening.
   */
  async replayEntry(pattern: string, entry: StreamEntry): Promise<'handled' | 'failed' | 'skipped' | { invalid: string }> {
    if (!this.processor) throw new Error('RedisStreamsServer must be listening to replay to handlers (call listen() first)');
    return this.processor.replay({ ...entry, stream: this.keys.stream(pattern), deliveryCount: 0 }, pattern);
  }

  /** Runs one reclaim pass now instead of waiting for the timer (operators and tests). */
  async reclaimNow(): Promise<void> {
    await this.reclaimer?.runOnce();
  }

  /**
   * Removes now, instead of at the next timer pass, the claim-checked payloads (large messages) whose entries were
   * trimmed from the consumed streams and whose dead letters are gone too. Failures are logged and retried by the
   * next pass, never thrown.
   * @returns how many blobs were deleted.
   */
  async sweepBlobsNow(): Promise<number> {
    const command = this.command;
    if (!command) return 0;
    this.blobSweeper ??= new BlobSweeper(command, this.keys);
    let deleted = 0;
    for (const { stream } of this.streams) deleted += await this.blobSweeper.sweep(stream);
    return deleted;
  }

  /** Partitions of partitioned topics this consumer owns now: `{ pattern, partition, stream, lease }`. */
  ownedPartitions(): { pattern: string; partition: number; stream: string; lease: string }[] {
    return this.partitioned?.ownedPartitions() ?? [];
  }

  /** One partition coordination round now (join/leave/rebalance) instead of waiting for the heartbeat. */
  async rebalanceNow(): Promise<void> {
    await this.partitioned?.rebalanceNow();
  }

  private commandConnectionSync(): ScriptedRedis {
    if (!this.command) throw new ConnectionClosedError('RedisStreamsServer');
    return this.command;
  }

  private commandConnection(): Promise<ScriptedRedis> {
    if (!this.command) return Promise.reject(new ConnectionClosedError('RedisStreamsServer'));
    return Promise.resolve(this.command);
  }

  private async start(): Promise<void> {
    if (this.closing) throw new ConnectionClosedError('RedisStreamsServer');
    const { consumer, connection } = this.config;
    const patterns = consumer.patterns ?? [...this.getHandlers().keys()];
    this.streams = patterns.map((pattern) => ({
      pattern,
      stream: this.keys.stream(pattern),
      retrySchedule: this.keys.retrySchedule(pattern, consumer.group),
    }));
    this.setState(RedisStreamsStatus.Connecting);
    this.command = defineScripts(createRedisConnection(connection, 'command', consumer.consumerName));
    const partitioned = this.partitioning.enabled;
    this.blocking = createRedisConnection(connection, 'blocking', consumer.consumerName);
    if (isCluster(this.command)) {
      const bell = createRedisConnection(connection, 'blocking', `${consumer.consumerName}.doorbell`);
      const listener = new DoorbellListener(bell, this.keys.doorbell(), { blockMs: consumer.blockMs, watchdogMs: connection.blockingWatchdogMs });
      this.doorbell = { connection: bell, listener };
    }
    for (const conn of [this.command, ...this.readingConnections()]) {
      conn.on('error', (error: unknown) => this.logger.debug?.(`Redis connection error: ${redact(errorText(error))}`));
      for (const [event, callback] of this.listeners) conn.on(event, callback);
    }
    for (const conn of this.readingConnections()) {
      conn.on('ready', () => {
        if (this.readingConnections().every((c) => c.status === 'ready')) this.setState(RedisStreamsStatus.Connected);
      });
      conn.on('reconnecting', () => this.setState(RedisStreamsStatus.Reconnecting));
    }
    await Promise.all([this.command, ...this.readingConnections()].map((conn) => connectOrThrow(conn, connection.url)));
    await this.doorbell?.listener.start();
    const slotReader = this.doorbell
      ? new MultiSlotReader(this.blocking, this.doorbell.listener, {
          group: consumer.group,
          consumer: consumer.consumerName,
          sweepMs: consumer.clusterSweepMs,
          watchdogMs: connection.blockingWatchdogMs,
        })
      : undefined;
    if (partitioned) await this.listPartitionStreams(patterns);
    else await this.ensureGroups();

    const acks = new AckBatcher(this.command, consumer.group, (n) => this.metrics.recordAcks(n), partitioned ? 'microtask' : 'immediate');
    this.acks = acks;
    const settler = new Settler(this.config, this.command, this.keys, acks, this.metrics, (stream, dueAtMs) => this.reclaimer?.noteRetry(stream, dueAtMs));
    this.schemas = this.config.schema.enabled ? (this.injectedSchemas ?? new SchemaManager(this.config)) : undefined;
    const processor = new MessageProcessor(
      this.config,
      this.command,
      settler,
      this.metrics,
      {
        getHandlerByPattern: (pattern) => this.handlerFor(pattern),
        withProcessingHooks: (context, fn) => this.withProcessingHooks(context, fn),
      },
      this.schemas,
    );
    for (const s of this.streams) processor.addStream(s.stream, s.pattern);
    processor.usePartitioning(this.partitioning);
    this.processor = processor;
    const onDeleted = (stream: string, ids: string[]) => {
      this.metrics.lostToTrimming += ids.length;
      this.logger.error(
        `${ids.length} pending entries were deleted by trimming before they were processed (data loss; raise ` +
          `streams.maxLen/retentionMs) ${logIds({ stream, group: consumer.group })} ids=${ids.slice(0, 20).join(',')}`,
      );
    };
    if (partitioned) {
      this.partitioned = new PartitionedConsumer({
        config: this.config,
        patterns,
        command: this.command,
        blocking: this.blocking,
        slotReader,
        keys: this.keys,
        partitioning: this.partitioning,
        ordering: this.ordering,
        inFlight: this.inFlight,
        processor,
        onDeleted,
      });
      await this.partitioned.start();
      this.startRetentionTrimming();
      this.setState(RedisStreamsStatus.Connected);
      this.logger.log(
        `Listening on ${patterns.length} partitioned topics (${this.ordering.strategy} ordering) ${logIds({ group: consumer.group, consumer: consumer.consumerName })}`,
      );
      return;
    }
    this.reclaimer = new PendingReclaimer(
      this.command,
      {
        streams: this.streams,
        group: consumer.group,
        consumer: consumer.consumerName,
        claimIdleMs: consumer.claimIdleMs,
        intervalMs: consumer.reclaimIntervalMs,
        deadConsumerIdleMs: consumer.deadConsumerIdleMs,
      },
      this.inFlight,
      { dispatch: (entry) => processor.process(entry), onReclaimed: (n) => (this.metrics.reclaimed += n), onDeleted },
    );
    const streams = this.streams.map((s) => s.stream);
    const reader = slotReader
      ? new ClusterEntryReader(slotReader, streams, consumer.blockMs)
      : new BlockingEntryReader(this.blocking, {
          streams,
          group: consumer.group,
          consumer: consumer.consumerName,
          blockMs: consumer.blockMs,
          watchdogMs: connection.blockingWatchdogMs,
        });
    this.loop = new ConsumerLoop(
      reader,
      { group: consumer.group, consumer: consumer.consumerName, batchSize: consumer.batchSize },
      this.inFlight,
      { dispatch: (entry) => processor.process(entry), recreateGroups: () => this.ensureGroups(), onDeleted },
    );
    await this.reclaimer.start();
    if (streams.length > 0) this.loop.start();
    this.startRetentionTrimming();
    this.setState(RedisStreamsStatus.Connected);
    this.logger.log(
      `Listening on ${this.streams.length} streams ${logIds({ group: consumer.group, consumer: consumer.consumerName })}`,
    );
  }

  /** Status and trimming cover every partition stream of the partitioned topics. */
  private async listPartitionStreams(patterns: readonly string[]): Promise<void> {
    const streams: { pattern: string; stream: string; retrySchedule: string }[] = [];
    for (const pattern of patterns) {
      const layout = await this.partitioning.layoutOf(pattern);
      for (let p = 0; p < readablePartitions(layout); p++) {
        const stream = this.keys.partition(pattern, p);
        streams.push({ pattern, stream, retrySchedule: this.keys.retryScheduleOf(stream, this.config.consumer.group) });
      }
    }
    this.streams = streams;
  }

  /** Creates the group on every stream (and the stream itself); an existing group is left as it is. */
  private async ensureGroups(): Promise<void> {
    const command = this.command;
    if (!command) return;
    const { group, groupStartId } = this.config.consumer;
    for (const { stream } of this.streams) {
      try {
        await command.xgroup('CREATE', stream, group, groupStartId, 'MKSTREAM');
        this.logger.log(`Created consumer group ${logIds({ stream, group })} start=${groupStartId}`);
      } catch (error) {
        if (classifyRedisError(error) !== 'busygroup') throw error;
      }
    }
  }

  /**
   * With both maxLen and retentionMs set, XADD trims by length and this timer applies the time limit. When
   * claim-checked payloads can arrive (claimCheckApplies), the same timer removes the blobs of trimmed entries.
   */
  private startRetentionTrimming(): void {
    const { retentionMs, maxLen } = this.config.streams;
    const trimsByTime = retentionMs !== undefined && maxLen !== undefined;
    const sweeps = claimCheckApplies(this.config.streams);
    if (!trimsByTime && !sweeps) return;
    const everyMs = retentionMs === undefined ? BLOB_SWEEP_INTERVAL_MS : Math.max(1_000, Math.min(60_000, Math.floor(retentionMs / 10)));
    const trim = async () => {
      if (trimsByTime) {
        const minId = `${Date.now() - retentionMs}-0`;
        for (const { stream } of this.streams) {
          await this.command?.xtrim(stream, 'MINID', '~', minId).catch((error: unknown) => {
            this.logger.debug?.(`Retention trim failed, next pass retries: ${errorText(error)} ${logIds({ stream })}`);
          });
        }
      }
      if (sweeps) await this.sweepBlobsNow();
    };
    const tick = () => {
      this.trimTimer = setTimeout(() => void trim().finally(() => this.closing || tick()), everyMs);
      this.trimTimer.unref();
    };
    tick();
  }

  private async stop(): Promise<void> {
    clearTimeout(this.trimTimer);
    const { shutdownTimeoutMs } = this.config.consumer;
    // Each step is bounded: a Redis that stopped answering must not keep close() (and the process) waiting.
    await withinMs(this.reclaimer?.stop(), shutdownTimeoutMs);
    const doorbellStopped = this.doorbell?.listener.stop();
    const readingStopped = this.partitioned ? this.partitioned.stopReading() : this.loop?.stop();
    // Interrupts a pending BLOCK at once (quit would wait for it to expire).
    for (const conn of this.readingConnections()) disconnectOnce(conn);
    await withinMs(Promise.all([doorbellStopped, readingStopped]), shutdownTimeoutMs);
    const unfinished = await this.inFlight.drain(shutdownTimeoutMs);
    if (unfinished > 0) {
      this.logger.warn(
        `${unfinished} handlers still running after consumer.shutdownTimeoutMs; their entries stay pending and ` +
          `are reclaimed by another consumer ${logIds({ group: this.config.consumer.group })}`,
      );
    }
    const flushed = this.acks?.flushAll().catch((error: unknown) => {
      this.logger.warn(`Final acks failed; those entries will be redelivered: ${errorText(error)}`);
    });
    await withinMs(flushed, shutdownTimeoutMs);
    // Only now, with every handler finished, may another consumer take this consumer's partitions.
    await withinMs(this.partitioned?.leave(), shutdownTimeoutMs);
    await this.shutdownConnections();
    if (this.schemas !== this.injectedSchemas) await withinMs(this.schemas?.close(), 1_000);
    this.setState(RedisStreamsStatus.Closed);
  }

  private async shutdownConnections(): Promise<void> {
    for (const conn of this.readingConnections()) disconnectOnce(conn);
    const command = this.command;
    if (command && command.status !== 'end') {
      const quit = command.quit().then(
        () => true,
        () => false,
      );
      if (!(await withinMs(quit, 1_000))) disconnectOnce(command);
    }
  }

  private setState(state: RedisStreamsStatus): void {
    if (this.closing && state !== RedisStreamsStatus.Closed) return;
    this.state = state;
    this._status$.next(state);
  }

  /**
   * Handler of a pattern, cached: Nest's lookup JSON-parses the pattern (and throws and catches for every plain
   * string pattern), which cost a fifth of the consumer's time. Only found handlers are cached, so patterns
   * written by strangers cannot grow the cache.
   */
  private handlerFor(pattern: string): MessageHandler | null {
    const cached = this.handlerCache.get(pattern);
    if (cached) return cached;
    const handler = this.getHandlerByPattern(pattern);
    if (handler) this.handlerCache.set(pattern, handler);
    return handler;
  }

  /**
   * Nest 12 runs processing hooks (tracing spans) around each message; Nest 11 has none. While nobody has set a
   * hook, the message runs directly (the hook machinery costs a few closures and promises per message).
   */
  private withProcessingHooks(context: RedisStreamsContext, fn: () => Promise<void>): Promise<void> {
    const self = this as unknown as { runWithProcessingHooks?: ProcessingHooksRunner; onProcessingStartHook?: unknown; onProcessingEndHook?: unknown };
    const runner = self.runWithProcessingHooks;
    if (typeof runner !== 'function') return fn();
    if (self.onProcessingStartHook === this.defaultStartHook && self.onProcessingEndHook === undefined) return fn();
    return runner.call(this, context, async (runEndHook: () => void) => {
      await fn();
      runEndHook(); // on failure Nest's runner runs it
    });
  }
}
