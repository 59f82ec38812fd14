import { Logger } from '@nestjs/common';
import { Server, type CustomTransportStrategy, type MessageHandler } from '@nestjs/microservices';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import type { StreamEntry } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { ConnectionClosedError } from '../errors/connection-closed.error.js';
import type { ConsumerNameInUseError } from '../errors/consumer-name-in-use.error.js';
import { InvalidUsageError } from '../errors/invalid-usage.error.js';
import { errorText, logIds } from '../observability/log-format.js';
import { TransportMetrics, type RedisStreamsMetricsSnapshot } from '../observability/metrics.js';
import { REDIS_STREAMS_TRANSPORT, RedisStreamsStatus } from '../redis-streams.constants.js';
import { AckBatcher } from './ack-batcher.js';
import { InFlight } from '../runtime/in-flight.js';
import { MessageProcessor } from './message-processor.js';
import { Settler } from './settler.js';
import { SchemaManager } from '../schema/schema.manager.js';
import { PartitioningManager } from '../partitioning/partitioning.manager.js';
import type { Partitioner } from '../partitioning/partitioner.js';
import { PartitionedConsumer } from '../consumer/partitioned-consumer.js';
import { OrderingManager } from '../ordering/ordering.manager.js';
import { serverStatus, type RedisStreamsServerStatus } from './server-status.js';
import { withinMs } from '../runtime/within-ms.js';
import { ConsumedStreams } from '../consumer/consumed-streams.js';
import { ServerConnections, type ReadingConnections } from '../consumer/server-connections.js';
import { GroupConsumer } from '../consumer/group-consumer.js';
import { ConsumerNameLease } from '../consumer/consumer-name-lease.js';
import type { ReplayHandlers, ReplayOutcome } from '../replay/replay-handlers.js';
import { processingHooksRunner } from './nest-compat.js';
import { attachServerTelemetry } from './server-telemetry.js';
import { aclUserOf, PermissionProblems } from '../observability/permission-problems.js';
import { runPreflight, type RedisPreflightReport } from '../observability/redis-preflight.js';
import { PayloadCodec } from '../payload-codec/payload-codec.js';
import type { EncryptionKeyProvider } from '../payload-codec/key-ring.js';

export type { RedisStreamsServerStatus, StreamStatus } from './server-status.js';

/** What reading needs: the connections and the processor that dispatches each entry. */
interface Reading extends ReadingConnections {
  readonly processor: MessageProcessor;
}

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
export class RedisStreamsServer extends Server implements CustomTransportStrategy, ReplayHandlers {
  /** Event handler failures reach this transport (it awaits them to decide ack, retry or dead-letter). */
  readonly propagatesEventHandlerErrors = true;
  protected readonly logger = new Logger(RedisStreamsServer.name);

  readonly config: ResolvedRedisStreamsConfig;
  private readonly keys: StreamKeys;
  private readonly metrics = new TransportMetrics();
  private readonly inFlight: InFlight;
  /** Command, reading and (Cluster) doorbell connections. */
  private readonly connections: ServerConnections;
  /** Topics that are not partitioned: reading loop and reclaimer. */
  private groupConsumer?: GroupConsumer;
  private acks?: AckBatcher;
  private settler?: Settler;
  /** What the start-up checks of the Redis server found (observability/redis-preflight.ts). */
  private preflight?: RedisPreflightReport;
  private processor?: MessageProcessor;
  private schemas?: SchemaManager;
  /** The module's SchemaManager (its registry, its counts); closed by the module, not by the server. */
  private readonly injectedSchemas?: SchemaManager;
  private readonly partitioning: PartitioningManager;
  readonly ordering: OrderingManager;
  /** Partitioned topics (partitioning or ordering enabled): coordinator, reader and ordered dispatcher. */
  private partitioned?: PartitionedConsumer;
  /** The streams read (per pattern, or every partition stream), their groups and their retention timer. */
  private readonly streams: ConsumedStreams;
  private state = RedisStreamsStatus.Disconnected;
  private readonly handlerCache = new Map<string, MessageHandler>();
  /** Runs one message inside Nest's processing hooks (nest-compat.ts). */
  private readonly runInProcessingHooks: (context: unknown, fn: () => Promise<void>) => Promise<void>;
  private closing?: Promise<void>;
  /** This instance's hold on consumer.consumerName in its group (one live instance per name). */
  private nameLease?: ConsumerNameLease;
  /** Commands Redis refuses for lack of ACL rights: logged once each, and the status unhealthy while they last. */
  private readonly permissions: PermissionProblems;
  /** Encryption and compression of payloads (and replies). */
  private readonly codec: PayloadCodec;

  /**
   * @param config the same configuration as `RedisStreamsEnterpriseModule.forRoot`; validated here.
   * @throws InvalidOptionsError listing every invalid field.
   */
  constructor(
    config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig = {},
    providers: { readonly partitioner?: Partitioner; readonly ordering?: OrderingManager; readonly schemas?: SchemaManager; readonly keyProvider?: EncryptionKeyProvider } = {},
  ) {
    super();
    this.config = resolveConfig(config);
    this.keys = new StreamKeys(this.config.streams.keyPrefix);
    this.permissions = new PermissionProblems(this.logger, aclUserOf(this.config.connection));
    this.connections = new ServerConnections(this.config, this.keys, this.logger, (state) => this.setState(state));
    this.streams = new ConsumedStreams(this.config, this.keys, this.logger, () => this.connections.command, this.metrics);
    // The server's own manager uses the server's connection; the injected one (module) serves users.
    this.partitioning = new PartitioningManager(this.config, providers.partitioner, () => this.connections.commandOrReject());
    this.ordering = providers.ordering ?? new OrderingManager(this.config);
    this.injectedSchemas = providers.schemas;
    this.codec = new PayloadCodec(this.config, providers.keyProvider);
    this.inFlight = new InFlight(this.partitioning.enabled ? this.ordering.maxConcurrency : this.config.consumer.concurrency);
    this.transportId = REDIS_STREAMS_TRANSPORT;
    this.runInProcessingHooks = processingHooksRunner(this);
    attachServerTelemetry(this.config, this.keys, this.metrics, this.status, { command: () => this.connections.command, streams: () => this.streams.list, inFlight: () => this.inFlight.size, ownedPartitions: () => this.ownedPartitions() });
    this.initializeSerializer(undefined);
    this.initializeDeserializer(undefined);
  }

  /** Connects, creates the consumer groups and starts reading. Called by Nest. */
  async listen(callback: (error?: unknown, ...info: unknown[]) => void): Promise<void> {
    try {
      await (this.metrics.tracer ? this.metrics.tracer.suppressed(() => this.start()) : this.start()); // reading loops: no spans of their own
      callback();
    } catch (error) {
      await this.nameLease?.release(this.config.consumer.shutdownTimeoutMs);
      await this.connections.close();
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
    this.connections.on(event, callback as unknown as (...args: unknown[]) => void);
  }

  /**
   * The ioredis connections: `[command, blocking]` (on a Redis Cluster, both are ioredis `Cluster` instances).
   */
  unwrap<T>(): T {
    const { command, blocking } = this.connections;
    if (!command || !blocking) {
      throw new InvalidUsageError('Not initialized: call listen() (app.listen or startAllMicroservices) before unwrap()');
    }
    return [command, blocking] as T;
  }

  /** Counters, throughput, error rate and handler latency percentiles of this server. */
  getMetrics(): RedisStreamsMetricsSnapshot {
    return this.metrics.snapshot(this.inFlight.size);
  }

  /**
   * Health (liveness and readiness, with the reasons when not), connection states, background loops, per-stream
   * pending, lag and oldest pending entry of this group (XINFO GROUPS, XPENDING), enabled features, warnings.
   */
  getStatus(): Promise<RedisStreamsServerStatus> {
    return serverStatus({
      config: this.config,
      state: this.state,
      connections: this.connections,
      inFlight: this.inFlight.size,
      reading: this.groupConsumer?.isRunning ?? this.partitioned?.isRunning ?? false,
      streams: this.streams.list,
      permissionProblems: this.permissions.list(),
      loops: [...(this.groupConsumer?.health() ?? []), ...(this.partitioned ? [this.partitioned.health()] : []), ...(this.settler ? [this.settler.health()] : [])],
      draining: this.closing !== undefined,
      preflight: this.preflight,
    });
  }


  /**
   * Hands one stored entry to its event handler again, as a replay (used by `ReplayManager`).
   * @throws InvalidUsageError when the server is not listening.
   */
  async replayEntry(pattern: string, entry: StreamEntry): Promise<ReplayOutcome> {
    if (!this.processor) throw new InvalidUsageError('RedisStreamsServer must be listening to replay to handlers (call listen() first)');
    return this.processor.replay({ ...entry, stream: this.keys.stream(pattern), deliveryCount: 0 }, pattern);
  }

  /** Runs one reclaim pass now instead of waiting for the timer (operators and tests). */
  async reclaimNow(): Promise<void> {
    await this.groupConsumer?.reclaimNow();
  }

  /**
   * Removes now, instead of at the next timer pass, the claim-checked payloads (large messages) whose entries were
   * trimmed from the consumed streams and whose dead letters are gone too. Failures are logged and retried by the
   * next pass, never thrown.
   * @returns how many blobs were deleted.
   */
  sweepBlobsNow(): Promise<number> {
    return this.streams.sweepBlobs();
  }

  /** Partitions of partitioned topics this consumer owns now: `{ pattern, partition, stream, lease }`. */
  ownedPartitions(): { pattern: string; partition: number; stream: string; lease: string }[] {
    return this.partitioned?.ownedPartitions() ?? [];
  }

  /** One partition coordination round now (join/leave/rebalance) instead of waiting for the heartbeat. */
  async rebalanceNow(): Promise<void> {
    await this.partitioned?.rebalanceNow();
  }

  /** Connects, lists the streams (creating their groups), then reads; Connected once reading runs. */
  private async start(): Promise<void> {
    if (this.closing) throw new ConnectionClosedError('RedisStreamsServer');
    const { consumer } = this.config;
    const patterns = consumer.patterns ?? [...this.getHandlers().keys()];
    const partitioned = this.partitioning.enabled;
    this.streams.usePatterns(patterns);
    this.setState(RedisStreamsStatus.Connecting);
    await this.codec.start(); // a missing key, key provider or codec package fails the start
    const { command, blocking, slotReader } = await this.connections.open();
    // Before the watch: a CONFIG GET the ACL refuses is "could not verify", not a permission problem.
    this.preflight = await runPreflight(command, { waitReplicas: this.config.connection.waitReplicas, user: aclUserOf(this.config.connection) }, this.logger);
    for (const connection of [command, ...this.connections.reading()]) this.permissions.watch(connection);
    // Before anything is read or taken back: a live twin's in-flight entries would look like our own.
    this.nameLease = new ConsumerNameLease(command, this.config.consumer, this.keys, (error) => this.onConsumerNameLost(error));
    await this.nameLease.acquire();
    if (partitioned) await this.streams.usePartitionStreams(patterns, this.partitioning);
    else await this.streams.ensureGroups();
    const processor = this.createProcessor(command, partitioned);
    const reading = { command, blocking, slotReader, processor };
    if (partitioned) await this.startPartitionedReading(patterns, reading);
    else await this.startGroupReading(reading);
    this.streams.startRetentionTrimming();
    this.setState(RedisStreamsStatus.Connected);
    const ids = logIds({ group: consumer.group, consumer: consumer.consumerName });
    this.logger.log(
      partitioned
        ? `Listening on ${patterns.length} partitioned topics (${this.ordering.strategy} ordering) ${ids}`
        : `Listening on ${this.streams.list.length} streams ${ids}`,
    );
  }

  /**
   * Another instance took this server's consumer name (it started while our lease had lapsed, e.g. Redis was
   * unreachable for longer than nameLeaseMs). Both now claim one pending list, so this server stops reading: closing
   * lets its running handlers finish and acknowledges them, and leaves the name to the other instance.
   */
  private onConsumerNameLost(error: ConsumerNameInUseError): void {
    this.logger.error(
      `Another instance took this server's consumer name while its lease had lapsed (Redis unreachable for longer than ` +
        `consumer.nameLeaseMs?); this server stops reading and closes: ${error.message}`,
      error.stack,
    );
    this.close().catch((closeError: unknown) => this.logger.error(`Closing after losing the consumer name failed: ${errorText(closeError)}`));
  }

  /** Acks, settlement (retry, dead letter) and dispatch to handlers, shared by both ways of reading. */
  private createProcessor(command: ScriptedRedis, partitioned: boolean): MessageProcessor {
    const acks = new AckBatcher(command, this.config.consumer.group, (n) => this.metrics.recordAcks(n), partitioned ? 'microtask' : 'immediate');
    this.acks = acks;
    const settler = (this.settler = new Settler(this.config, command, this.keys, acks, this.metrics, (stream, dueAtMs) => this.groupConsumer?.noteRetry(stream, dueAtMs)));
    this.schemas = this.config.schema.enabled ? (this.injectedSchemas ?? new SchemaManager(this.config)) : undefined;
    const processor = new MessageProcessor(
      this.config,
      command,
      settler,
      this.metrics,
      {
        getHandlerByPattern: (pattern) => this.handlerFor(pattern),
        withProcessingHooks: (context, fn) => this.runInProcessingHooks(context, fn),
      },
      this.schemas,
      this.codec,
    );
    for (const s of this.streams.list) processor.addStream(s.stream, s.pattern);
    processor.usePartitioning(this.partitioning);
    this.processor = processor;
    return processor;
  }

  /** Partitioned topics: the coordinator assigns partitions, the ordered dispatcher keeps the strategy's order. */
  private async startPartitionedReading(patterns: readonly string[], reading: Reading): Promise<void> {
    this.partitioned = new PartitionedConsumer({
      config: this.config,
      patterns,
      command: reading.command,
      blocking: reading.blocking,
      slotReader: reading.slotReader,
      keys: this.keys,
      partitioning: this.partitioning,
      ordering: this.ordering,
      inFlight: this.inFlight,
      processor: reading.processor,
      onDeleted: (stream, ids) => this.onDeletedByTrimming(stream, ids),
    });
    await this.partitioned.start();
  }

  /** Plain streams: competing consumers of one group, with the reclaimer for retries and dead consumers' entries. */
  private async startGroupReading(reading: Reading): Promise<void> {
    this.groupConsumer = new GroupConsumer({
      ...reading,
      config: this.config,
      streams: this.streams.list,
      inFlight: this.inFlight,
      recreateGroups: () => this.streams.ensureGroups(),
      onReclaimed: (n, stream) => this.metrics.countReclaimed(n, stream),
      onDeleted: (stream, ids) => this.onDeletedByTrimming(stream, ids),
    });
    await this.groupConsumer.start();
  }

  private onDeletedByTrimming(stream: string, ids: string[]): void {
    this.metrics.countLostToTrimming(ids.length, stream);
    this.logger.error(
      `${ids.length} pending entries were deleted by trimming before they were processed (data loss; raise ` +
        `streams.maxLen/retentionMs) ${logIds({ stream, group: this.config.consumer.group })} ids=${ids.slice(0, 20).join(',')}`,
    );
  }

  private async stop(): Promise<void> {
    this.streams.stopRetentionTrimming();
    const { shutdownTimeoutMs } = this.config.consumer;
    // Each step is bounded: a Redis that stopped answering must not keep close() (and the process) waiting.
    await withinMs(this.groupConsumer?.stopReclaiming(), shutdownTimeoutMs);
    const doorbellStopped = this.connections.stopDoorbell();
    const readingStopped = this.partitioned ? this.partitioned.stopReading() : this.groupConsumer?.stopReading();
    // Interrupts a pending BLOCK at once (quit would wait for it to expire).
    this.connections.interruptReads();
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
    // Handlers still running keep the name reserved until its lease expires: a restart under the same name would
    // take back their entries while they run.
    if (unfinished > 0) this.nameLease?.stop();
    else await this.nameLease?.release(shutdownTimeoutMs);
    await this.connections.close();
    if (this.schemas !== this.injectedSchemas) await withinMs(this.schemas?.close(), 1_000);
    this.setState(RedisStreamsStatus.Closed);
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
}
