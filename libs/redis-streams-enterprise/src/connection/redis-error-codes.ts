/** Classification of Redis error replies; the only place that looks at their text. */
export type RedisErrorKind = 'busygroup' | 'nogroup' | 'noscript' | 'oom' | 'readonly' | 'loading' | 'noperm' | 'other';

export function classifyRedisError(error: unknown): RedisErrorKind {
  const message = error instanceof Error ? error.message : String(error);
  if (parseNoPerm(message)) return 'noperm';
  if (message.startsWith('BUSYGROUP')) return 'busygroup';
  if (message.startsWith('NOGROUP')) return 'nogroup';
  if (message.startsWith('NOSCRIPT')) return 'noscript';
  if (message.startsWith('OOM')) return 'oom';
  if (message.startsWith('READONLY')) return 'readonly';
  if (message.startsWith('LOADING')) return 'loading';
  return 'other';
}

/** What an ACL refusal names: a command (Redis names it, except inside a script on Redis 7.0), a key or a channel. */
export interface NoPermReply {
  readonly kind: 'command' | 'key' | 'channel';
  /** The refused command in ACL form (`hdel`, `client|setname`) when Redis names it. */
  readonly command?: string;
  /** The refusal happened inside a Lua script. */
  readonly inScript: boolean;
}

/**
 * Reads an ACL refusal from a Redis error message; undefined for any other error. The forms:
 * - `NOPERM this user has no permissions to run the 'hdel' command` (7.0), `NOPERM User u has no permissions to run
 *   the 'hdel' command` (7.2+), `... to access one of the keys/channels used as arguments`, `NOPERM No permissions to
 *   access a key/channel`;
 * - inside a script: `ERR The user executing the script can't run this command or subcommand script: ...` and
 *   `... can't access at least one of the keys/channels mentioned in the command arguments ...` (7.0, no command
 *   named), or `ERR ACL failure in script: NOPERM ...` (7.2+).
 */
export function parseNoPerm(message: string): NoPermReply | undefined {
  const inScript = /The user executing the script can't|ACL failure in script/i.test(message);
  if (!inScript && !/\bNOPERM\b/.test(message)) return undefined;
  const named = /no permissions to run the '([^']+)' command/i.exec(message)?.[1];
  if (named) return { kind: 'command', command: named.toLowerCase(), inScript };
  if (/\bkeys?\b/i.test(message)) return { kind: 'key', inScript };
  if (/\bchannels?\b/i.test(message)) return { kind: 'channel', inScript };
  return { kind: 'command', inScript };
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

/** Node/OpenSSL codes for a server certificate that does not chain to a trusted CA. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/** Codes for a certificate outside its validity period. */
const CERTIFICATE_NOT_VALID_NOW = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/**
 * Why a connection could not be opened, in words that say what to fix: TLS verification failures (with their code),
 * a plain-text client on a TLS port, a TLS client on a plain-text port, a missing client certificate. The result is
 * the cause of `ConnectionFailedError`: an `Error` whose message carries the original code, with the original error as
 * its own `cause` and its `code` copied. Errors that need no explanation are returned unchanged. Text is redacted
 * (`redact`); PEM content never reaches these errors (Node's TLS errors quote neither keys nor certificates).
 */
export function describeConnectFailure(error: unknown, isTls: boolean, node?: string): unknown {
  if (!isErrorLike(error)) return typeof error === 'string' ? redact(error) : error;
  const code = (error as NodeJS.ErrnoException).code;
  const detail = `${code && !error.message.includes(code) ? `${code}: ` : ''}${redact(openSslReason(error.message))}`;
  // ioredis attaches the failed command to a reply error: for a refused HELLO/AUTH that is the password.
  const leaks = carriesCredentials(error);
  const explained = (text: string) => {
    const wrapped = new Error(node ? `${node}: ${text}` : text, leaks ? undefined : { cause: error });
    return Object.assign(wrapped, code ? { code } : {});
  };
  if (code && UNTRUSTED_CERTIFICATE.has(code)) {
    return explained(
      `TLS: the server's certificate is not trusted [${detail}]; set connection.tls.ca or caFile to the CA that signed it`,
    );
  }
  if (code && CERTIFICATE_NOT_VALID_NOW.has(code)) {
    return explained(`TLS: the server's certificate is not valid at this time [${detail}]`);
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return explained(
      `TLS: the server's certificate is not for this host [${detail}]; connect by a name the certificate lists, or set connection.tls.servername to it`,
    );
  }
  if (isTls && (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|unknown protocol/i.test(error.message))) {
    return explained(`TLS: the server did not answer in TLS [${detail}]; point the connection at the server's tls-port`);
  }
  if (isTls && /ALERT_CERTIFICATE_REQUIRED|ALERT_BAD_CERTIFICATE|ALERT_UNKNOWN_CA|ALERT_HANDSHAKE_FAILURE/.test(code ?? '')) {
    return explained(
      `TLS: the server refused the handshake [${detail}]; it requires a client certificate it trusts: set connection.tls.cert and key (or certFile and keyFile)`,
    );
  }
  if (isTls && code === 'ECONNRESET') {
    return explained(
      `TLS: the server closed the connection during the handshake [${detail}]; if it requires client certificates (tls-auth-clients), set connection.tls.cert and key (or certFile and keyFile) to one signed by a CA it trusts`,
    );
  }
  if (isTls && code === 'ETIMEDOUT') {
    return explained(`TLS: no handshake within the connect timeout [${detail}]; check that the port is the server's tls-port, not a plain-text port`);
  }
  if (!isTls && (code === 'ECONNRESET' || /^Connection is closed/.test(error.message))) {
    return explained(`the server closed the connection before it was ready [${detail}]; if it is a TLS port, use a rediss:// URL or connection.tls`);
  }
  if (leaks || node || detail !== error.message) {
    const safe = explained(detail);
    safe.name = error.name;
    return safe;
  }
  return error;
}

/**
 * OpenSSL's own messages (`80…:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate
 * required:../deps/openssl/…:SSL alert number 116`) reduced to their reason (`tlsv13 alert certificate required`).
 */
function openSslReason(message: string): string {
  return /^[0-9A-F]+:error:[0-9A-F]+:[^:]+:[^:]+:([^:]+):/.exec(message)?.[1] ?? message;
}

/**
 * An Error by shape, not by `instanceof`: Node's socket and TLS errors come from the main realm, and under a test
 * runner's VM context (jest) they are not instances of the context's `Error`.
 */
function isErrorLike(error: unknown): error is Error {
  return typeof error === 'object' && error !== null && typeof (error as Error).message === 'string';
}

/** True when an error (or its cause) carries an AUTH or HELLO command, whose arguments hold the password. */
function carriesCredentials(error: unknown, depth = 0): boolean {
  if (!isErrorLike(error) || depth > 4) return false;
  const command = (error as { command?: { name?: unknown } }).command;
  if (typeof command?.name === 'string' && /^(auth|hello)$/i.test(command.name)) return true;
  return carriesCredentials(error.cause, depth + 1);
}
