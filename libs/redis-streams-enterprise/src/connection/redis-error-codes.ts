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

/**
 * True when ioredis refused a command before writing it to the socket (the connection was not ready and has no
 * offline queue, or the Cluster was ended): Redis certainly never saw it.
 */
export function isUnsentCommandError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return /^(Stream isn't writeable and enableOfflineQueue options is false|Cluster isn't ready and enableOfflineQueue options is false|Cluster is ended\.)/.test(
    error.message,
  );
}

/**
 * True when a command failed because its connection failed, and it may have been written and executed before that:
 * the connection closed or reset with the command in flight (MaxRetriesPerRequestError, "Connection is closed", an
 * aborted pipeline), or no reply came within the watchdog ("Command timed out"). False for Redis error replies
 * (the command was refused) and for commands never sent (isUnsentCommandError).
 */
export function isInFlightCommandLost(error: unknown): boolean {
  if (isUnsentCommandError(error)) return false;
  return isConnectionError(error) || (error instanceof Error && error.name === 'AbortError');
}

/** Removes credentials from text that may quote a Redis URL or an AUTH command. */
export function redact(text: string): string {
  return text
    .replace(/(rediss?:\/\/)([^@/\s]*)@/gi, '$1***@')
    .replace(/\b(AUTH|HELLO)\b[^\n]*/gi, '$1 ***');
}
