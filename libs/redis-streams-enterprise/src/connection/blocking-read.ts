import type { Redis } from 'ioredis';

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
