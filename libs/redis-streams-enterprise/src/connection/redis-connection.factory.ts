import { Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from '../config/connection.options.js';
import { ConnectionFailedError } from '../errors/connection-failed.error.js';
import { redact } from './redis-error-codes.js';

/**
 * Roles a connection plays. They differ in how they behave while Redis is away:
 * - `command`: acks, scripts, XADD. Fails fast (no offline queue), so callers see outages instead of an
 *   unbounded in-memory backlog; ioredis reconnects in the background.
 * - `blocking`: one per reading loop, because a blocked connection can do nothing else. Never gives up on a
 *   command (the loop decides), and is disconnected (not quit) on close so a pending BLOCK ends at once.
 */
export type ConnectionRole = 'command' | 'blocking';

function roleOptions(role: ConnectionRole, watchdogMs: number): RedisOptions {
  if (role === 'command') {
    // socketTimeout: a command that gets no byte back within the watchdog time means a dead (half-open) socket;
    // ioredis destroys it, fails or re-sends the commands in flight, and reconnects. Without it, acks, claims and
    // emits on a connection whose peer vanished would wait forever.
    return { enableOfflineQueue: false, maxRetriesPerRequest: 1, socketTimeout: watchdogMs };
  }
  // A blocked XREADGROUP legitimately receives nothing for BLOCK ms, so the reading loop runs its own watchdog.
  return { enableOfflineQueue: true, maxRetriesPerRequest: null, autoResendUnfulfilledCommands: false };
}

/** Reconnect with capped exponential backoff, forever: the owner decides when to give up by closing. */
function retryStrategy(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 10), 2_000);
}

/** Creates (but does not connect) a connection for a role. */
export function createRedisConnection(options: ConnectionOptions, role: ConnectionRole, name: string): Redis {
  return new Redis(options.url, {
    retryStrategy,
    // ioredis waits this long for a socket to close after disconnect(), on a timer that is not unref'd and that
    // nothing clears when the socket was already gone (a failed connect): keep it short.
    disconnectTimeout: 200,
    ...options.options,
    ...roleOptions(role, options.blockingWatchdogMs),
    connectionName: `${options.connectionName}:${name}:${role}`,
    lazyConnect: true,
  });
}

/**
 * Connects and waits until the connection is ready. On failure the connection is disconnected, so ioredis does not
 * keep retrying in the background of a caller that already gave up.
 */
export async function connectOrThrow(redis: Redis, url: string): Promise<Redis> {
  if (redis.status === 'ready') return redis;
  let lastError: unknown;
  const remember = (error: unknown) => {
    lastError = error;
  };
  redis.on('error', remember);
  try {
    if (redis.status === 'wait' || redis.status === 'end') await redis.connect();
    else await waitUntilReady(redis);
    return redis;
  } catch (error) {
    disconnectOnce(redis);
    throw new ConnectionFailedError(redact(url), lastError ?? error);
  } finally {
    redis.off('error', remember);
  }
}

/** Resolves when the connection is ready; rejects when it ends, or after `timeoutMs` if given. */
export function waitUntilReady(redis: Redis, timeoutMs?: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('Connection is closed'));
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('end', onEnd);
    };
    redis.once('ready', onReady);
    redis.once('end', onEnd);
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        cleanup();
        reject(new Error(`not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
    }
  });
}

/**
 * Drops a connection without waiting for pending commands. Calling ioredis' disconnect() twice arms a second
 * 2-second socket timer that nothing clears, which keeps a process alive after close(); this never does.
 */
export function disconnectOnce(redis: Redis | undefined): void {
  if (redis && redis.status !== 'end') redis.disconnect();
}
