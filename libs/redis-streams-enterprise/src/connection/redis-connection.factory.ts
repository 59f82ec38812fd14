import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
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

/**
 * Creates (but does not connect) a connection for a role: a `Redis` for a single server, or an ioredis `Cluster`
 * when `connection.cluster` is set.
 *
 * A `Cluster` has the command methods, scripts (`defineCommand`), statuses, events and connect/quit/disconnect of a
 * `Redis`, routed by key slot; it is returned under the `Redis` type so that the code that only sends commands does
 * not care which it got. Code that must (reading several slots, SCAN per node) asks `isCluster()`.
 */
export function createRedisConnection(options: ConnectionOptions, role: ConnectionRole, name: string): Redis {
  if (options.cluster) return createClusterConnection(options, role, name) as unknown as Redis;
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

function createClusterConnection(options: ConnectionOptions, role: ConnectionRole, name: string): Cluster {
  const cluster = options.cluster!;
  const user: ClusterOptions = cluster.options ?? {};
  const { enableOfflineQueue, ...nodeRoleOptions } = roleOptions(role, options.blockingWatchdogMs);
  const connection = new Cluster(
    cluster.nodes.map(({ host, port }) => ({ host, port })),
    {
      clusterRetryStrategy: retryStrategy,
      ...user,
      // The offline queue is the Cluster's (node connections always queue while the Cluster is ready).
      enableOfflineQueue,
      redisOptions: {
        disconnectTimeout: 200,
        ...user.redisOptions,
        ...nodeRoleOptions,
        connectionName: `${options.connectionName}:${name}:${role}`,
      },
      lazyConnect: true,
    },
  );
  clusterSeeds.set(connection, `cluster ${cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`);
  return connection;
}

/** How a cluster connection is named in errors (its `url` option is not used). */
const clusterSeeds = new WeakMap<Cluster, string>();

/** True when the connection is an ioredis `Cluster` (see `createRedisConnection`). */
export function isCluster(redis: Redis | Cluster): redis is Cluster {
  return redis instanceof Cluster;
}

/**
 * Connects and waits until the connection is ready. On failure the connection is disconnected, so ioredis does not
 * keep retrying in the background of a caller that already gave up.
 */
export async function connectOrThrow<T extends Redis | Cluster>(redis: T, url: string): Promise<T> {
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
    throw new ConnectionFailedError((isCluster(redis) && clusterSeeds.get(redis)) || redact(url), lastError ?? error);
  } finally {
    redis.off('error', remember);
  }
}

/** Resolves when the connection is ready; rejects when it ends, or after `timeoutMs` if given. */
export function waitUntilReady(redis: Redis | Cluster, timeoutMs?: number): Promise<void> {
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
export function disconnectOnce(redis: Redis | Cluster | undefined): void {
  if (redis && redis.status !== 'end') redis.disconnect();
}
