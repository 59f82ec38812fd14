import type { Redis } from 'ioredis';
import { waitUntilReady } from './redis-connection.factory.js';

/**
 * Runs a blocking read (XREADGROUP ... BLOCK) with a watchdog. A read that outlives BLOCK by the margin means the
 * socket is presumed half-open: the connection is dropped so ioredis reconnects and the read fails. When the socket
 * closes under a pending read (reset, Redis restart), ioredis drops the read without settling it (blocking
 * connections do not re-send unfulfilled commands); it is failed at once so the caller reads again as soon as the
 * connection is back, instead of waiting for the watchdog.
 */
export function withReadWatchdog<T>(redis: Redis, read: Promise<T>, limitMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onClose: (() => void) | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      redis.disconnect(true);
      reject(new Error(`XREADGROUP did not return within ${limitMs} ms; connection replaced`));
    }, limitMs);
    timer.unref();
    onClose = () => reject(new Error('connection closed during XREADGROUP'));
    redis.once('close', onClose);
  });
  return Promise.race([read, watchdog]).finally(() => {
    clearTimeout(timer);
    if (onClose) redis.off('close', onClose);
  });
}

/**
 * Issues a blocking read only once its connection is ready (waiting at most `limitMs` for a reconnect), then runs it
 * under the watchdog. Blocking connections have no offline queue: a read issued while disconnected would otherwise
 * wait there and be sent after its loop gave up on it, and deliver entries nobody handles; waiting here for 'ready'
 * keeps the read as quick after a reconnect as the queue made it.
 */
export async function blockingRead<T>(redis: Redis, issue: () => Promise<T>, limitMs: number): Promise<T> {
  if (redis.status !== 'ready') {
    const status = redis.status;
    try {
      await waitUntilReady(redis, limitMs);
    } catch (error) {
      // Not ready in time: a reconnect stuck in its handshake on a dead link (half-open) never ends by itself, so the
      // connection is replaced, as the watchdog does for a read. A connection closed for good ('end') is left alone.
      if (redis.status !== 'end') redis.disconnect(true);
      throw new Error(`the reading connection was not ready within ${limitMs} ms (was ${status}); connection replaced`, { cause: error });
    }
  }
  return withReadWatchdog(redis, issue(), limitMs);
}

/**
 * CLIENT ID of a blocking connection (what CLIENT UNBLOCK needs), or undefined when it cannot be had now. Blocking
 * connections do not re-send commands in flight when their socket closes, and ioredis then never settles them: a
 * bare `client('ID')` caught by a reset waited forever, and a partitioned consumer starting at that moment never
 * listened (found by the soak, seed 42). Bounded like a read: failed at 'close', or after `limitMs`.
 */
export async function clientIdOf(redis: Redis, limitMs: number): Promise<number | undefined> {
  try {
    return Number(await withReadWatchdog(redis, redis.client('ID') as Promise<number>, limitMs));
  } catch {
    return undefined;
  }
}

/**
 * XREADGROUP and, pipelined behind it on the same connection, the XPENDING summary of each stream it names: Redis
 * runs the summaries once the read returned, so they show what a stale read of a former owner took before it. The
 * read's error is thrown as it would be alone; a summary that failed is left out (the takeover asks again).
 */
export async function readWithPendingCheck(
  blocking: Redis,
  args: unknown[],
  streams: readonly string[],
  group: string,
): Promise<{ reply: unknown; pending: Map<string, unknown> }> {
  const pipeline = blocking.pipeline();
  (pipeline.xreadgroup as (...a: unknown[]) => unknown)(...args);
  for (const stream of streams) pipeline.xpending(stream, group);
  const results = (await pipeline.exec()) ?? [];
  const [readError, reply] = results[0] ?? [new Error('the pipeline returned no reply for XREADGROUP'), null];
  if (readError) throw readError;
  const pending = new Map<string, unknown>();
  streams.forEach((stream, i) => {
    const [error, summary] = results[i + 1] ?? [new Error('no reply')];
    if (!error) pending.set(stream, summary);
  });
  return { reply, pending };
}
