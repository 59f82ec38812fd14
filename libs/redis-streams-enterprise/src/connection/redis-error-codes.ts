/** Classification of Redis error replies; the only place that looks at their text. */
export type RedisErrorKind = 'busygroup' | 'nogroup' | 'noscript' | 'oom' | 'readonly' | 'loading' | 'other';

export function classifyRedisError(error: unknown): RedisErrorKind {
  const message = error instanceof Error ? error.message : String(error);
  if (message.startsWith('BUSYGROUP')) return 'busygroup';
  if (message.startsWith('NOGROUP')) return 'nogroup';
  if (message.startsWith('NOSCRIPT')) return 'noscript';
  if (message.startsWith('OOM')) return 'oom';
  if (message.startsWith('READONLY')) return 'readonly';
  if (message.startsWith('LOADING')) return 'loading';
  return 'other';
}

/**
 * Redis Cluster replies that mean the command was NOT executed and may be sent again once the slot map is current:
 * MOVED / ASK (slot elsewhere), TRYAGAIN (slot migrating), CLUSTERDOWN (failover in progress).
 */
export function isClusterRetryable(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/.test(message);
}

/** True for errors of the connection itself (socket closed, reset, timed out), as opposed to Redis error replies. */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ETIMEDOUT' ||
    /Connection is closed|Stream isn't writeable|Command timed out|connection (lost|closed)|socket/i.test(error.message)
  );
}

/** Removes credentials from text that may quote a Redis URL or an AUTH command. */
export function redact(text: string): string {
  return text
    .replace(/(rediss?:\/\/)([^@/\s]*)@/gi, '$1***@')
    .replace(/\b(AUTH|HELLO)\b[^\n]*/gi, '$1 ***');
}
