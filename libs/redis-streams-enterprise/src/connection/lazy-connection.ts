import type { ConnectionOptions } from '../config/connection.options.js';
import { ConnectionClosedError } from '../errors/connection-closed.error.js';
import { connectOrThrow, createRedisConnection, disconnectOnce } from './redis-connection.factory.js';
import { defineScripts, type ScriptedRedis } from './scripts.js';

/**
 * A command connection opened on first use (for operator-side services such as dead-letter and replay managers,
 * which an app may inject and never call) and closed once; a failed attempt is retried on the next use.
 */
export class LazyConnection {
  private connection?: Promise<ScriptedRedis>;
  private closed = false;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly name: string,
    private readonly owner: string,
  ) {}

  get(): Promise<ScriptedRedis> {
    if (this.closed) return Promise.reject(new ConnectionClosedError(this.owner));
    this.connection ??= (async () => {
      const redis = defineScripts(createRedisConnection(this.options, 'command', this.name));
      redis.on('error', () => undefined); // connection errors surface as rejected commands
      return connectOrThrow(redis, this.options.url) as Promise<ScriptedRedis>;
    })().catch((error: unknown) => {
      this.connection = undefined;
      throw error;
    });
    return this.connection;
  }

  /** Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    const redis = await connection?.catch(() => undefined);
    if (redis && redis.status !== 'end') await redis.quit().catch(() => disconnectOnce(redis));
  }
}
