import type { INestApplicationContext } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { ConnectionClosedError } from '../errors/connection-closed.error.js';
import { InvalidOptionsError, type ConfigViolation } from '../errors/invalid-options.error.js';
import { SettlementTimeoutError } from '../errors/settlement-timeout.error.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import { RedisStreamsClient } from '../transport/redis-streams.client.js';
import { RedisStreamsRecord } from '../transport/redis-streams.record.js';
import { Sleeper } from '../runtime/sleeper.js';
import { deleteKeysWithPrefix } from './prefix-cleanup.js';
import { SettlementProbe, type SettledMessage } from './settlement-probe.js';

/** Settings of a `RedisStreamsTestHarness`. */
export interface RedisStreamsTestHarnessOptions {
  /** Consumer group whose outcome is awaited. @default the configuration's `consumer.group` */
  readonly group?: string;
  /** Longest wait of `emitAndWait`/`waitUntilSettled` when the call gives none. @default 10000 */
  readonly timeoutMs?: number;
  /** How often Redis is read while waiting. @default 20 */
  readonly pollIntervalMs?: number;
}

/** Per-call settings of `emitAndWait` and `waitUntilSettled`. */
export interface SettleOptions {
  /** Longest wait. @default the harness's `timeoutMs` (10000) */
  readonly timeoutMs?: number;
  /** Consumer group whose outcome is awaited. @default the harness's group */
  readonly group?: string;
  /**
   * `waitUntilSettled` only: the stream (partition) that holds the entry. Entry ids are unique per stream, so on a
   * partitioned topic two partitions can hold different messages with the same id; give this or `messageId` there.
   * @default the only stream of the pattern with an entry of that id
   */
  readonly stream?: string;
  /** `waitUntilSettled` only: the message id (`setMessageId`) of the entry, to tell partitions' same ids apart. */
  readonly messageId?: string;
}

/**
 * Emits messages in tests and waits until the consumer group is done with them: handled (acknowledged after the
 * handler succeeded) or dead-lettered (with the dead letter's reason and error). It reads the outcome from Redis
 * (the group's pending list and the dead-letter stream), so it works with any handler, any number of consumers and
 * the retry path, and needs no hook in the app. Framework-agnostic: use it with jest, vitest, node:test, mocha.
 *
 * ```ts
 * const harness = RedisStreamsTestHarness.fromApp(app);           // an app that imports RedisStreamsEnterpriseModule
 * const result = await harness.emitAndWait('orders.created', order, { timeoutMs: 5_000 });
 * expect(result.outcome).toBe('handled');
 * ```
 *
 * Start the consumer (`app.listen()`) before emitting when its group starts at `$` (`consumer.groupStartId`), or the
 * group never sees the message. With `deadLetter.enabled: false` a message that used up its attempts is acknowledged
 * and dropped, which looks `handled` from Redis. Patterns are strings (the stream of an object pattern is not known
 * here).
 */
export class RedisStreamsTestHarness {
  /** The validated configuration the harness emits and reads with. */
  readonly config: ResolvedRedisStreamsConfig;
  /** Consumer group whose outcome is awaited by default. */
  readonly group: string;
  private readonly timeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly keys: StreamKeys;
  private readonly connection: LazyConnection;
  private readonly sleepers = new Set<Sleeper>();
  private closed = false;

  private constructor(
    config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig,
    private readonly client: RedisStreamsClient,
    private readonly ownsClient: boolean,
    options: RedisStreamsTestHarnessOptions,
  ) {
    this.config = resolveConfig(config);
    this.group = options.group ?? this.config.consumer.group;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 20;
    validateHarnessOptions(this.timeoutMs, this.pollIntervalMs);
    this.keys = new StreamKeys(this.config.streams.keyPrefix);
    this.connection = new LazyConnection(this.config.connection, 'test-harness', 'RedisStreamsTestHarness');
  }

  /**
   * A harness for the configuration of an app (a `TestingModule`, `INestMicroservice` or `INestApplication`) that
   * imports `RedisStreamsEnterpriseModule`; it emits with the app's `RedisStreamsClient` (so a custom partitioner or
   * schema registry applies) and leaves closing that client to the app.
   * @throws InvalidOptionsError when the app does not import the module, or the options are invalid.
   */
  static fromApp(app: Pick<INestApplicationContext, 'get'>, options: RedisStreamsTestHarnessOptions = {}): RedisStreamsTestHarness {
    let config: ResolvedRedisStreamsConfig;
    let client: RedisStreamsClient;
    try {
      config = app.get<ResolvedRedisStreamsConfig>(REDIS_STREAMS_OPTIONS, { strict: false });
      client = app.get(RedisStreamsClient, { strict: false });
    } catch {
      // Nest's own error only says that a provider is missing; this one says what to do.
      throw new InvalidOptionsError([
        {
          path: 'app',
          rule: 'importsRedisStreamsEnterpriseModule',
          message:
            'RedisStreamsTestHarness.fromApp needs an app that imports RedisStreamsEnterpriseModule; ' +
            'for a `new RedisStreamsServer(config)` app use RedisStreamsTestHarness.fromConfig(config)',
        },
      ]);
    }
    return new RedisStreamsTestHarness(config, client, false, options);
  }

  /**
   * A harness with its own `RedisStreamsClient` for a configuration (the same one the consumer under test uses).
   * @throws InvalidOptionsError listing every invalid field of the configuration or the options.
   */
  static fromConfig(config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig, options: RedisStreamsTestHarnessOptions = {}): RedisStreamsTestHarness {
    const resolved = resolveConfig(config);
    return new RedisStreamsTestHarness(resolved, new RedisStreamsClient(resolved), true, options);
  }

  /** Every key this harness's configuration writes starts with `<keyPrefix>:`. */
  get keyPrefix(): string {
    return this.config.streams.keyPrefix;
  }

  /**
   * Emits like `client.emit()` and resolves with the entry id once Redis stored it.
   * @throws what `RedisStreamsClient.emit` throws (e.g. `RedisUnavailableError`, `SchemaValidationError`).
   */
  async emit(pattern: string, data: unknown): Promise<string> {
    if (this.closed) throw new ConnectionClosedError('RedisStreamsTestHarness');
    return lastValueFrom(this.client.emit<string>(pattern, data));
  }

  /**
   * Emits and waits until the group handled or dead-lettered the message.
   * @throws SettlementTimeoutError when it is neither within `timeoutMs` (what Redis showed is in its message).
   * @throws ConnectionClosedError when the harness is closed while waiting.
   */
  async emitAndWait(pattern: string, data: unknown, options: Omit<SettleOptions, 'stream' | 'messageId'> = {}): Promise<SettledMessage> {
    // A message id of our own tells which partition holds the entry (partitions can share entry ids).
    const record = data instanceof RedisStreamsRecord ? data : new RedisStreamsRecord(data);
    const messageId = record.options.messageId ?? randomUUID();
    const entryId = await this.emit(pattern, new RedisStreamsRecord(record.data, { ...record.options, messageId }));
    return this.waitUntilSettled(pattern, entryId, { ...options, messageId });
  }

  /**
   * Waits until the group handled or dead-lettered an entry emitted elsewhere (e.g. by the app itself), given its
   * pattern and entry id (and, on a partitioned topic, its `stream` or `messageId`).
   * @throws SettlementTimeoutError when it is neither within `timeoutMs`.
   * @throws ConnectionClosedError when the harness is closed while waiting.
   */
  async waitUntilSettled(pattern: string, entryId: string, options: SettleOptions = {}): Promise<SettledMessage> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    validateHarnessOptions(timeoutMs, this.pollIntervalMs);
    const group = options.group ?? this.group;
    const deadline = Date.now() + timeoutMs;
    const probe = new SettlementProbe(await this.redis(), this.keys, pattern, entryId, group, { stream: options.stream, messageId: options.messageId });
    for (;;) {
      let settled: SettledMessage | undefined;
      try {
        settled = await probe.check();
      } catch (error) {
        // close() during a look at Redis fails that command; the reason is the close, not the command.
        if (this.closed) throw new ConnectionClosedError('RedisStreamsTestHarness');
        throw error;
      }
      if (settled) return settled;
      const left = deadline - Date.now();
      if (left <= 0) throw new SettlementTimeoutError(pattern, entryId, group, timeoutMs, probe.state, probe.stream);
      await this.sleep(Math.min(this.pollIntervalMs, left));
      if (this.closed) throw new ConnectionClosedError('RedisStreamsTestHarness');
    }
  }

  /**
   * Deletes every key under the configuration's key prefix (SCAN + UNLINK, every master of a Cluster; never
   * FLUSHALL) and returns how many. Close the apps using the prefix first: a running consumer recreates its groups.
   */
  async cleanup(): Promise<number> {
    return deleteKeysWithPrefix(await this.redis(), this.keyPrefix);
  }

  /**
   * Ends the waits in progress (they fail with `ConnectionClosedError`), closes the harness's connection and, for
   * `fromConfig`, its client. Keys are kept: call `cleanup()` first. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const sleeper of this.sleepers) sleeper.wake();
    await this.connection.close();
    if (this.ownsClient) await this.client.close();
  }

  private redis() {
    return this.connection.get();
  }

  private async sleep(ms: number): Promise<void> {
    const sleeper = new Sleeper();
    this.sleepers.add(sleeper);
    try {
      await sleeper.sleep(ms);
    } finally {
      this.sleepers.delete(sleeper);
    }
  }
}

function validateHarnessOptions(timeoutMs: number, pollIntervalMs: number): void {
  const violations: ConfigViolation[] = [];
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    violations.push({ path: 'timeoutMs', rule: 'isPositive', message: `timeoutMs must be a positive number of ms (got ${timeoutMs})` });
  }
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 1) {
    violations.push({ path: 'pollIntervalMs', rule: 'min', message: `pollIntervalMs must not be less than 1 (got ${pollIntervalMs})` });
  }
  if (violations.length > 0) throw new InvalidOptionsError(violations);
}
