import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import type { Cluster, Redis } from 'ioredis';
import { from, type Observable } from 'rxjs';
import { randomUUID } from 'node:crypto';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { connectOrThrow, createRedisConnection, disconnectOnce, isCluster, waitUntilReady } from '../connection/redis-connection.factory.js';
import { redact } from '../connection/redis-error-codes.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { ConnectionClosedError } from '../errors/connection-closed.error.js';
import { PayloadTooLargeError } from '../errors/payload-too-large.error.js';
import { RedisUnavailableError } from '../errors/redis-unavailable.error.js';
import { errorText } from '../observability/log-format.js';
import { RedisStreamsStatus } from '../redis-streams.constants.js';
import { encodeMessage, exceedsBytes, serializePayloadWithin, validateDependencies, validateHeaders, validateMessageKey, type MessageHeaders } from '../wire/envelope.js';
import { claimCheckOf } from '../claim-check/claim-check.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { defineScripts } from '../connection/scripts.js';
import { PartitioningManager, type PartitionRoute } from '../partitioning/partitioning.manager.js';
import type { Partitioner } from '../partitioning/partitioner.js';
import { RedisStreamsRecord } from './redis-streams.record.js';
import { SchemaManager } from '../schema/schema.manager.js';
import { ReplyListener } from '../producer/reply-listener.js';
import { withinMs } from '../runtime/within-ms.js';
import { EntryPublisher, type ClaimCheckedPayload } from '../producer/entry-publisher.js';
import { PartitionedPublisher } from '../producer/partitioned-publisher.js';
import { InvalidUsageError } from '../errors/invalid-usage.error.js';
import { runDispatchHook } from './nest-compat.js';
import { PendingRequests } from './pending-requests.js';
import { ClientTelemetry } from './client-telemetry.js';
import type { PublishSpan } from '../observability/telemetry.js';
import { PayloadCodec } from '../payload-codec/payload-codec.js';
import type { EncryptionKeyProvider } from '../payload-codec/key-ring.js';

/** Block time of the reply reader; only bounds how quickly close() is noticed on a dead socket. */
const REPLY_BLOCK_MS = 5_000;

/**
 * Nest `ClientProxy` over Redis Streams.
 * - `emit(pattern, data)` appends to the pattern's stream and completes with the entry id once Redis stored it.
 * - `send(pattern, data)` does the same with a reply address and resolves with the handler's reply, or fails with
 *   the handler's error (`RemoteHandlerError`) or `RequestTimeoutError` after `client.requestTimeoutMs`.
 * While Redis is unreachable, both fail at once with `RedisUnavailableError`, or wait in a bounded queue for the
 * reconnect when `client.offlineQueueSize` is set; nothing is held unbounded and nothing is dropped silently. A write
 * whose connection failed while it was in flight fails with `AmbiguousWriteError` (it may have been stored).
 */
export class RedisStreamsClient extends ClientProxy implements OnApplicationShutdown {
  readonly config: ResolvedRedisStreamsConfig;
  /** Identifies this client instance; names its reply stream. */
  readonly clientId = randomUUID();
  private readonly logger = new Logger(RedisStreamsClient.name);
  private readonly keys: StreamKeys;
  private readonly pending: PendingRequests;
  private readonly listeners: [string, (...args: unknown[]) => void][] = [];
  private command?: Redis;
  private connecting?: Promise<Redis>;
  private replies?: ReplyListener;
  private repliesStarting?: Promise<void>;
  private closed = false;
  private waitingOffline = 0;
  private schemas?: SchemaManager;
  /** Partition routing in emit order; undefined: not decided yet; null: topics are not partitioned. */
  private partitioned?: PartitionedPublisher | null;
  /** True once the command connection was ready; from then on "not ready" means an outage. */
  private hasConnected = false;
  /** Writes each encoded entry (and rings the Cluster doorbell). */
  private readonly entries: EntryPublisher;
  /** Tracing and metrics of writes (observability.*); `observing` false when off. */
  private readonly telemetry: ClientTelemetry;
  /** Encryption and compression of payloads; opens encrypted replies. */
  private readonly codec: PayloadCodec;

  /**
   * @param config the same configuration as `RedisStreamsEnterpriseModule.forRoot`; validated here.
   * @throws InvalidOptionsError listing every invalid field.
   */
  constructor(
    config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig = {},
    private readonly partitioner?: Partitioner,
    /** The module's SchemaManager (its registry, its counts); closed by the module, not by the client. */
    private readonly injectedSchemas?: SchemaManager,
    /** With encryption.keyProvider 'external': where the encryption keys come from. */
    keyProvider?: EncryptionKeyProvider,
  ) {
    super();
    this.config = resolveConfig(config);
    this.keys = new StreamKeys(this.config.streams.keyPrefix);
    this.entries = new EntryPublisher(this.config, this.keys, () => this.readyConnection());
    this.pending = new PendingRequests(this.config.client.maxPendingRequests, this.config.client.requestTimeoutMs);
    this.telemetry = new ClientTelemetry(this.config);
    this.codec = new PayloadCodec(this.config, keyProvider);
  }

  /** Connects the command connection (called by emit/send; may be called early to fail fast at start-up). */
  connect(): Promise<Redis> {
    if (this.closed) return Promise.reject(new ConnectionClosedError('RedisStreamsClient'));
    this.connecting ??= this.openCommandConnection().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  /** Rejects pending requests with `ConnectionClosedError`, stops reading replies and closes the connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Emits of this turn waiting to be batched go out before the connection is closed.
    this.entries.flushQueued();
    this.pending.failAll(new ConnectionClosedError('RedisStreamsClient'));
    this.telemetry.stop();
    await this.replies?.stop();
    await withinMs(this.entries.drainRings(), 1_000);
    if (this.schemas !== this.injectedSchemas) await this.schemas?.close();
    const command = this.command;
    if (command && command.status === 'ready') {
      await command.del(this.keys.replyStream(this.clientId)).catch(() => undefined);
      await command.quit().catch(() => disconnectOnce(command));
    } else {
      disconnectOnce(command);
    }
    this._status$.next(RedisStreamsStatus.Closed);
  }

  /** Nest calls this on application shutdown. */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** Registers a listener for events of the command connection (`error`, `ready`, `reconnecting`, ...). */
  on<EventKey extends string = string, EventCallback extends Function = Function>(event: EventKey, callback: EventCallback): void {
    const listener = callback as unknown as (...args: unknown[]) => void;
    this.listeners.push([event, listener]);
    this.command?.on(event, listener);
  }

  /** The ioredis command connection. */
  unwrap<T>(): T {
    if (!this.command) throw new InvalidUsageError('Not initialized: call connect() (or emit/send) before unwrap()');
    return this.command as T;
  }

  /** Requests waiting for replies. */
  get pendingRequests(): number {
    return this.pending.size;
  }

  /**
   * Sends at once (like Nest's `emit`, the call does not wait for a subscriber) and returns an Observable that
   * emits the entry id and completes once Redis stored the entry, or errors. Implemented directly on a Promise:
   * Nest's generic version builds several Subjects per call, which showed up as a third of the producer's time.
   */
  emit<TResult = string, TInput = unknown>(pattern: unknown, data: TInput): Observable<TResult> {
    if (pattern === null || pattern === undefined || data === null || data === undefined) {
      return super.emit(pattern, data);
    }
    const packet: ReadPacket = { pattern, data };
    runDispatchHook(this, packet);
    const sent = this.dispatchEvent<TResult>(packet);
    // A caller that never subscribes opted out of the result; the rejection must not crash the process.
    sent.catch(() => undefined);
    return from(sent);
  }

  protected async dispatchEvent<T = string>(packet: ReadPacket): Promise<T> {
    const pattern = this.normalizePattern(packet.pattern);
    // Not awaited here: a partitioned topic's send turn is taken first, so a schema lookup cannot reorder emits.
    const schema = this.checkSchema(pattern, packet.data);
    const messageId = randomUUID();
    if (!this.telemetry.observing) return (await this.publishMessage(packet, pattern, messageId, undefined, schema)) as T;
    return (await this.telemetry.observed(pattern, messageId, undefined, (span) => this.publishMessage(packet, pattern, messageId, undefined, schema, span))) as T;
  }

  /**
   * Routes (partition), encodes and stores one message. Messages with an idempotency key, a global sequence number
   * or a partition layout to respect go through one script (check and append atomically); the rest are a plain XADD.
   * A write refused because the topic's partition count just changed is routed again under the new layout.
   * `schema` (the stamp, or a refusal) is awaited after the message took its send turn.
   */
  private async publishMessage(
    packet: ReadPacket,
    pattern: string,
    messageId: string,
    replyTo: string | undefined,
    schema: Promise<string | undefined>,
    trace?: PublishSpan,
  ): Promise<string> {
    const record = packet.data instanceof RedisStreamsRecord ? packet.data.options : undefined;
    const data = packet.data instanceof RedisStreamsRecord ? packet.data.data : packet.data;
    const idempotencyKey = record?.idempotencyKey === undefined ? undefined : validateMessageKey('idempotencyKey', record.idempotencyKey);
    const dependsOn = record?.dependsOn && validateDependencies(record.dependsOn);
    const partitioned = this.partitionedPublisher();
    let stamp: string | undefined;
    const send = async (route: PartitionRoute | undefined) => {
      const key = route?.key ?? (record?.partitionKey === undefined ? undefined : validateMessageKey('partitionKey', record.partitionKey));
      const encoded = await this.encode(packet, pattern, messageId, replyTo, stamp, { key, idempotencyKey, epoch: route?.epoch, dependsOn, trace });
      // The layout epoch is checked by the publish script only where the partition count can change (`dynamic`, or a
      // topic whose count was changed already); a fixed layout publishes with a plain XADD.
      const checkEpoch = route !== undefined && (route.epoch > 0 || this.config.partitioning.strategy === 'dynamic');
      const stream = route?.stream ?? this.keys.stream(pattern);
      const epoch = checkEpoch ? route.epoch : undefined;
      const options = { messageId: encoded.messageId, idempotencyKey, epoch, blob: encoded.blob };
      if (trace) return trace.runWrite(stream, () => this.entries.publish(stream, encoded.fields, options));
      return this.entries.publish(stream, encoded.fields, options);
    };
    const stamped = schema.then((s) => void (stamp = s));
    if (!partitioned) {
      await stamped;
      return (await send(undefined)).id;
    }
    return partitioned.publish(pattern, data, { partitionKey: record?.partitionKey, idempotencyKey }, send, stamped);
  }

  /** Partition routing, when topics are partitioned (partitioning or ordering enabled). */
  private partitionedPublisher(): PartitionedPublisher | undefined {
    if (this.partitioned === null) return undefined;
    if (!this.partitioned) {
      const manager = new PartitioningManager(this.config, this.partitioner, () => this.readyConnection() as Promise<ScriptedRedis>);
      this.partitioned = manager.enabled ? new PartitionedPublisher(manager) : null;
    }
    return this.partitioned ?? undefined;
  }

  /**
   * With schema.enabled and a schema registered for the pattern (its event type): validates the payload against the
   * latest version and returns the `<type>@<version>` stamp. strict: an invalid payload is refused
   * (SchemaValidationError, nothing written); warn: logged and sent; ignore: stamped without validation.
   */
  private async checkSchema(pattern: string, data: unknown): Promise<string | undefined> {
    if (!this.config.schema.enabled) return undefined;
    this.schemas ??= this.injectedSchemas ?? new SchemaManager(this.config);
    return this.schemas.stampOutgoing(pattern, data instanceof RedisStreamsRecord ? data.data : data);
  }

  /**
   * The command connection once it is ready. While Redis is unreachable, either fails at once (default) or waits in
   * a bounded queue for the reconnect (client.offlineQueueSize / offlineTimeoutMs).
   */
  private async readyConnection(): Promise<Redis> {
    const command = this.command;
    if (command?.status === 'ready' && !this.closed) return command;
    // First connection still being made (or closed, or ended): connect() waits for it or says why it failed.
    if (this.closed || !command || command.status === 'end' || !this.hasConnected) return this.connect();
    const { offlineQueueSize, offlineTimeoutMs } = this.config.client;
    if (offlineQueueSize === 0) throw new RedisUnavailableError('the connection is down and client.offlineQueueSize is 0');
    if (this.waitingOffline >= offlineQueueSize) {
      throw new RedisUnavailableError(`${this.waitingOffline} calls already wait for the reconnect (client.offlineQueueSize)`);
    }
    this.waitingOffline++;
    try {
      await waitUntilReady(command, offlineTimeoutMs);
    } catch (error) {
      throw new RedisUnavailableError(`it did not come back within client.offlineTimeoutMs (${offlineTimeoutMs} ms)`, { cause: error });
    } finally {
      this.waitingOffline--;
    }
    if (this.closed) throw new ConnectionClosedError('RedisStreamsClient');
    return command;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const requestId = randomUUID();
    let pattern: string;
    let dispose: () => void;
    let span: PublishSpan | undefined;
    try {
      pattern = this.normalizePattern(packet.pattern);
      const traced = this.telemetry.tracer ? this.telemetry.requestSpan(pattern, requestId, callback) : { callback };
      span = traced.span;
      dispose = this.pending.add(requestId, pattern, traced.callback);
    } catch (error) {
      span?.end({ error });
      callback({ err: error, isDisposed: true });
      return () => undefined;
    }
    const write = (trace?: PublishSpan) =>
      this.publishMessage(packet, pattern, requestId, this.keys.replyStream(this.clientId), this.checkSchema(pattern, packet.data), trace);
    this.startReplies()
      .then(() => (this.telemetry.observing ? this.telemetry.observed(pattern, requestId, span, write) : write()))
      .catch((error: unknown) => this.pending.fail(requestId, error));
    return dispose;
  }

  private async encode(
    packet: ReadPacket,
    pattern: string,
    messageId: string,
    replyTo: string | undefined,
    schema: string | undefined,
    extra: { key?: string; idempotencyKey?: string; epoch?: number; dependsOn?: readonly string[]; trace?: PublishSpan },
  ): Promise<{ fields: string[]; blob?: ClaimCheckedPayload; messageId: string }> {
    let data: unknown = packet.data;
    let headers: MessageHeaders | undefined;
    if (data instanceof RedisStreamsRecord) {
      headers = data.options.headers;
      messageId = replyTo ? messageId : (data.options.messageId ?? messageId);
      data = data.data;
    }
    const metadata = (packet as ReadPacket & { metadata?: Record<string, string> }).metadata;
    if (metadata) headers = { ...metadata, ...headers };
    if (extra.trace) {
      const traced: Record<string, string> = { ...headers };
      extra.trace.inject(traced);
      headers = traced;
    }
    const { maxPayloadBytes, claimCheckThresholdBytes } = this.config.streams;
    const json = serializePayloadWithin(pattern, data, maxPayloadBytes);
    if (exceedsBytes(json, maxPayloadBytes)) {
      throw new PayloadTooLargeError(pattern, Buffer.byteLength(json), maxPayloadBytes);
    }
    // Compressed and encrypted first (compression.*, encryption.*), so a claim-checked blob holds ciphertext too.
    const encoded = await this.codec.encode(json, pattern, messageId, headers && validateHeaders(headers));
    // Above the threshold the payload goes to its own key as it is (a string: ioredis copies a Buffer once more).
    const ref = claimCheckOf(encoded.json, claimCheckThresholdBytes);
    const fields = encodeMessage({ pattern, messageId, json: encoded.json, encoding: encoded.encoding, blob: ref, headers: encoded.headers, replyTo, schema, ...extra });
    return { fields, blob: ref && { ref, json: encoded.json }, messageId };
  }

  private async openCommandConnection(): Promise<Redis> {
    await this.codec.start(); // a missing key, key provider or codec package fails here, before anything is sent
    const command = defineScripts(createRedisConnection(this.config.connection, 'command', `client-${this.clientId.slice(0, 8)}`));
    command.on('error', (error: unknown) => this.logger.debug?.(`Redis connection error: ${redact(errorText(error))}`));
    command.on('ready', () => {
      this.hasConnected = true;
      this._status$.next(RedisStreamsStatus.Connected);
    });
    command.on('reconnecting', () => this._status$.next(RedisStreamsStatus.Reconnecting));
    for (const [event, listener] of this.listeners) command.on(event, listener);
    this.command = command;
    const ready = await connectOrThrow(command, this.config.connection.url);
    const connection = ready as Redis | Cluster;
    if (isCluster(connection)) {
      // ioredis connects to each Cluster node on first use; scripted publishes queued while a node connection is
      // being opened were seen stored out of order (ioredis 6). Opening every master's connection first keeps a
      // producer's messages of one key in the order they were sent.
      await Promise.all(connection.nodes('master').map((node) => node.ping().catch(() => undefined))); // a node that is down fails the publish itself
    }
    if (!this.closed) this.telemetry.start();
    return ready;
  }

  /** The reply reader starts with the first request, on its own blocking connection. */
  private startReplies(): Promise<void> {
    this.repliesStarting ??= (async () => {
      const connection = createRedisConnection(this.config.connection, 'blocking', `client-${this.clientId.slice(0, 8)}-replies`);
      connection.on('error', (error: unknown) => this.logger.debug?.(`Redis connection error: ${redact(errorText(error))}`));
      try {
        await connectOrThrow(connection, this.config.connection.url);
      } catch (error) {
        this.repliesStarting = undefined;
        throw error;
      }
      if (this.closed) {
        disconnectOnce(connection);
        throw new ConnectionClosedError('RedisStreamsClient');
      }
      const stream = this.keys.replyStream(this.clientId);
      const options = { watchdogMs: this.config.connection.blockingWatchdogMs, open: (fields: Record<string, string>) => this.codec.decodeReply(fields, stream) };
      this.replies = new ReplyListener(connection, stream, REPLY_BLOCK_MS, (reply) => this.pending.answer(reply), options);
      this.replies.start();
    })();
    return this.repliesStarting;
  }

}
