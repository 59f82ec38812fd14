/**
 * The server's Redis connections, apart from the server (which decides when each is opened and closed): the command
 * connection, the reading connection (blocking reads on a single server, slot reads on a Cluster) and, on a Redis
 * Cluster, the doorbell listener's own connection. Here they get their listeners and report their state.
 */
import type { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { connectOrThrow, createRedisConnection, disconnectOnce, isCluster } from '../connection/redis-connection.factory.js';
import { redact } from '../connection/redis-error-codes.js';
import { defineScripts, type ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { ConnectionClosedError } from '../errors/connection-closed.error.js';
import { errorText } from '../observability/log-format.js';
import { RedisStreamsStatus } from '../redis-streams.constants.js';
import { DoorbellListener, usesDoorbell } from '../cluster/doorbell.js';
import { MultiSlotReader } from '../cluster/multi-slot-reader.js';
import { withinMs } from '../runtime/within-ms.js';

type Listener = (...args: unknown[]) => void;

/** The connections reading uses, once open. */
export interface ReadingConnections {
  readonly command: ScriptedRedis;
  readonly blocking: Redis;
  /** Redis Cluster: reads streams of many slots, woken by the doorbell (absent on a single server). */
  readonly slotReader?: MultiSlotReader;
}

export class ServerConnections {
  private readonly listeners: [string, Listener][] = [];
  private commandConnection?: ScriptedRedis;
  /** The reading connection (blocking reads on a single server; slot reads on a Cluster). */
  private blockingConnection?: Redis;
  /** Redis Cluster only: the doorbell listener and its own connection (cluster/doorbell.ts). */
  private doorbell?: { connection: Redis; listener: DoorbellListener };

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly keys: StreamKeys,
    /** The server's logger: connection errors are the server's. */
    private readonly logger: Logger,
    /** Told when the reading connections are all ready again or one reconnects. */
    private readonly setState: (state: RedisStreamsStatus) => void,
  ) {}

  get command(): ScriptedRedis | undefined {
    return this.commandConnection;
  }

  get blocking(): Redis | undefined {
    return this.blockingConnection;
  }

  /** @throws ConnectionClosedError before listen() opened the command connection. */
  commandOrThrow(): ScriptedRedis {
    const command = this.commandConnection;
    if (!command) throw new ConnectionClosedError('RedisStreamsServer');
    return command;
  }

  /** The command connection, or a rejection with ConnectionClosedError before listen() opened it. */
  commandOrReject(): Promise<ScriptedRedis> {
    const command = this.commandConnection;
    if (!command) return Promise.reject(new ConnectionClosedError('RedisStreamsServer'));
    return Promise.resolve(command);
  }

  /** The connections reads block on: the reading connection and the doorbell's. */
  reading(): Redis[] {
    return [this.blockingConnection, this.doorbell?.connection].filter((c): c is Redis => c !== undefined);
  }

  /** Adds a listener to every connection, now and when they are created. */
  on(event: string, listener: Listener): void {
    this.listeners.push([event, listener]);
    this.commandConnection?.on(event, listener);
    for (const conn of this.reading()) conn.on(event, listener);
  }

  /** Creates the connections, attaches the listeners, connects, then starts the doorbell listener (Cluster). */
  async open(): Promise<ReadingConnections> {
    const { consumer, connection } = this.config;
    const command = defineScripts(createRedisConnection(connection, 'command', consumer.consumerName));
    this.commandConnection = command;
    const blocking = createRedisConnection(connection, 'blocking', consumer.consumerName);
    this.blockingConnection = blocking;
    if (usesDoorbell(command, this.config.streams.doorbell)) {
      const bell = createRedisConnection(connection, 'blocking', `${consumer.consumerName}.doorbell`);
      const listener = new DoorbellListener(bell, this.keys.doorbell(), { blockMs: consumer.blockMs, watchdogMs: connection.blockingWatchdogMs });
      this.doorbell = { connection: bell, listener };
    }
    this.attachListeners(command);
    await Promise.all([command, ...this.reading()].map((conn) => connectOrThrow(conn, connection.url)));
    await this.doorbell?.listener.start();
    const slotReader = this.doorbell
      ? new MultiSlotReader(blocking, this.doorbell.listener, {
          group: consumer.group,
          consumer: consumer.consumerName,
          sweepMs: consumer.sweepMs,
          watchdogMs: connection.blockingWatchdogMs,
        })
      : undefined;
    return { command, blocking, slotReader };
  }

  /** Stops the doorbell listener (Cluster); undefined on a single server. */
  stopDoorbell(): Promise<void> | undefined {
    return this.doorbell?.listener.stop();
  }

  /** Interrupts a pending BLOCK at once (quit would wait for it to expire). */
  interruptReads(): void {
    for (const conn of this.reading()) disconnectOnce(conn);
  }

  /** Disconnects the reading connections and quits the command connection (disconnects it if quit takes over 1 s). */
  async close(): Promise<void> {
    this.interruptReads();
    const command = this.commandConnection;
    if (command && command.status !== 'end') {
      const quit = command.quit().then(
        () => true,
        () => false,
      );
      if (!(await withinMs(quit, 1_000))) disconnectOnce(command);
    }
  }

  private attachListeners(command: ScriptedRedis): void {
    for (const conn of [command, ...this.reading()]) {
      conn.on('error', (error: unknown) => this.logger.debug?.(`Redis connection error: ${redact(errorText(error))}`));
      for (const [event, callback] of this.listeners) conn.on(event, callback);
    }
    for (const conn of this.reading()) {
      conn.on('ready', () => {
        if (this.reading().every((c) => c.status === 'ready')) this.setState(RedisStreamsStatus.Connected);
      });
      conn.on('reconnecting', () => this.setState(RedisStreamsStatus.Reconnecting));
    }
  }
}
