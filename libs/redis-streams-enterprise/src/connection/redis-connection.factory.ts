import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as NodeTlsOptions } from 'node:tls';
import type { ConnectionOptions, ConnectionTlsOptions } from '../config/connection.options.js';
import { ConnectionFailedError } from '../errors/connection-failed.error.js';
import { describeConnectFailure, redact } from './redis-error-codes.js';

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
    // ioredis destroys it, fails the commands in flight, and reconnects. Without it, acks, claims and emits on a
    // connection whose peer vanished would wait forever.
    // No re-send of commands in flight: Redis may have run them already (the reply was what got lost). A re-sent
    // publish wrote a second entry, and on a partitioned topic whose layout changed meanwhile the re-sent script
    // answered "stale", so the client routed the message again and stored it in a second partition, where
    // exactly-once processing (per partition) handled it twice (found by the soak, seed 42). maxRetriesPerRequest 0
    // fails every command in flight when the connection closes (autoResendUnfulfilledCommands: false is no substitute:
    // ioredis 6 then drops them unsettled, so their callers wait forever). Each caller decides instead: an emit fails
    // with AmbiguousWriteError, acks and commits are retried, leases are renewed again.
    return { enableOfflineQueue: false, maxRetriesPerRequest: 0, socketTimeout: watchdogMs };
  }
  // A blocked XREADGROUP legitimately receives nothing for BLOCK ms, so the reading loop runs its own watchdog.
  // No offline queue: a read issued while the connection is down would wait and be sent on reconnect, after its loop
  // gave up on it (the watchdog fails a read at 'close') — the entries it then delivers land in this consumer's
  // pending list with nobody to handle them (a partitioned consumer never re-reads its own pending list). Failing at
  // once, the loop simply reads again once the connection is back. Nor are reads in flight re-sent on reconnect.
  return { enableOfflineQueue: false, maxRetriesPerRequest: null, autoResendUnfulfilledCommands: false };
}

/**
 * What each connection sends on connect, kept to what an ACL user needs to be granted (connection/acl-roles.ts):
 * HELLO/AUTH (always allowed), CLIENT SETNAME (connection.connectionName) and INFO (ioredis' ready check, which waits
 * while Redis loads its data after a restart). Not CLIENT SETINFO: it only tells the server "ioredis <version>", and
 * naming it in an ACL rule fails on Redis 7.0, which does not know it (a refused one would fill ACL LOG). Users may
 * switch it back on through connection.options.
 */
const LEAST_PRIVILEGE_HANDSHAKE: RedisOptions = { disableClientInfo: true };

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
  const redis = new Redis(options.url, {
    retryStrategy,
    // ioredis waits this long for a socket to close after disconnect(), on a timer that is not unref'd and that
    // nothing clears when the socket was already gone (a failed connect): keep it short.
    disconnectTimeout: 200,
    ...LEAST_PRIVILEGE_HANDSHAKE,
    ...options.options,
    ...singleServerTls(options),
    ...roleOptions(role, options.blockingWatchdogMs),
    connectionName: `${options.connectionName}:${name}:${role}`,
    lazyConnect: true,
  });
  if (usesTls(options)) {
    tlsConnections.add(redis);
    guardTlsStreams(redis);
  }
  return redis;
}

/**
 * A TLS socket can emit a second 'error' after ioredis' one-shot listeners took the first: the server's alert read
 * after a failed certificate check, or a handshake cut short by disconnect() (seen: "tlsv1 alert decode error").
 * Nothing would listen to it, so it would crash the process as an uncaught exception. This keeps a listener on every
 * socket that failed once; the first error is what counts and ioredis reports it.
 */
function guardTlsStreams(redis: Redis): void {
  redis.on('error', () => {
    const stream = redis.stream as NetStream | undefined;
    if (stream && !guardedStreams.has(stream)) {
      guardedStreams.add(stream);
      stream.on('error', ignoreLaterSocketError);
    }
  });
}

type NetStream = Redis['stream'];
const guardedStreams = new WeakSet<NetStream>();
function ignoreLaterSocketError(): void {
  // Deliberately empty: see guardTlsStreams.
}

/**
 * The `tls` of a single-server connection. A `rediss://` URL always means TLS: ioredis would take a falsy `tls` from
 * `options` over the URL's scheme and talk plain text, so that is replaced by TLS with defaults (never a downgrade).
 */
function singleServerTls(options: ConnectionOptions): Pick<RedisOptions, 'tls'> {
  const explicit = nodeTlsOptions(options);
  if (explicit) return { tls: explicit };
  if (/^rediss:/i.test(options.url) && !options.options?.tls) return { tls: {} };
  return {};
}

function usesTls(options: ConnectionOptions): boolean {
  if (options.tls) return true;
  if (options.cluster) return Boolean(options.cluster.options?.redisOptions?.tls);
  return /^rediss:/i.test(options.url) || Boolean(options.options?.tls);
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
        ...LEAST_PRIVILEGE_HANDSHAKE,
        ...user.redisOptions,
        // Every node, seeds and the ones CLUSTER SLOTS names, by IP address: see ConnectionTlsOptions.servername.
        ...(options.tls ? { tls: nodeTlsOptions(options) } : {}),
        ...nodeRoleOptions,
        connectionName: `${options.connectionName}:${name}:${role}`,
      },
      lazyConnect: true,
    },
  );
  clusterSeeds.set(connection, {
    label: `cluster ${cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`,
    seed: cluster.nodes[0],
    redisOptions: connection.options.redisOptions ?? {},
  });
  if (usesTls(options)) {
    tlsConnections.add(connection);
    connection.on('+node', guardTlsStreams);
  }
  return connection;
}

/** Connections that speak TLS, so that a failure to connect is explained in TLS terms. */
const tlsConnections = new WeakSet<Redis | Cluster>();

/** Node TLS options built once per (frozen) connection options, so the PEM files are read at start, not per reconnect. */
const builtTls = new WeakMap<ConnectionOptions, NodeTlsOptions>();

function nodeTlsOptions(options: ConnectionOptions): NodeTlsOptions | undefined {
  if (!options.tls) return undefined;
  let built = builtTls.get(options);
  if (!built) {
    const { material, problems } = loadTlsMaterial(options.tls);
    // Validation read the same files moments ago; this fails only if they changed since.
    if (problems.length > 0) {
      const target = options.cluster ? 'cluster' : redact(options.url);
      throw new ConnectionFailedError(target, new Error(problems.map((p) => p.message).join('; ')));
    }
    const { servername, rejectUnauthorized } = options.tls;
    built = { ...material, ...(servername ? { servername } : {}), rejectUnauthorized: rejectUnauthorized !== false };
    builtTls.set(options, built);
  }
  return built;
}

/** A problem with one field of `connection.tls`; the message names the field and file, never the PEM content. */
export interface TlsProblem {
  readonly field: keyof ConnectionTlsOptions;
  readonly message: string;
}

/**
 * Reads the PEMs of `connection.tls` (inline or from files) and checks them: certificates parse, the key parses (with
 * its passphrase), and the key belongs to the client certificate. Used by validation (for the problems) and by the
 * connection factory (for the material).
 */
export function loadTlsMaterial(tls: ConnectionTlsOptions): {
  material: Pick<NodeTlsOptions, 'ca' | 'cert' | 'key' | 'passphrase'>;
  problems: TlsProblem[];
} {
  const problems: TlsProblem[] = [];
  const where = (field: keyof ConnectionTlsOptions) => (field.endsWith('File') ? `connection.tls.${field} (${String(tls[field])})` : `connection.tls.${field}`);
  const read = (inline: keyof ConnectionTlsOptions, file: keyof ConnectionTlsOptions): { text: string; field: keyof ConnectionTlsOptions } | undefined => {
    if (typeof tls[inline] === 'string') return { text: tls[inline] as string, field: inline };
    if (typeof tls[file] !== 'string') return undefined;
    try {
      return { text: readFileSync(tls[file] as string, 'utf8'), field: file };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push({ field: file, message: `${where(file)} cannot be read${code ? ` (${code})` : ''}` });
      return undefined;
    }
  };
  const certificates = (source: { text: string; field: keyof ConnectionTlsOptions }): X509Certificate[] => {
    const blocks = source.text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) {
      problems.push({ field: source.field, message: `${where(source.field)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` });
      return [];
    }
    try {
      return blocks.map((block) => new X509Certificate(block));
    } catch {
      // The parser's message says nothing more useful than this, and must not be relied on to keep PEM text out.
      problems.push({ field: source.field, message: `${where(source.field)} holds a PEM certificate that does not parse` });
      return [];
    }
  };
  const ca = read('ca', 'caFile');
  const cert = read('cert', 'certFile');
  const key = read('key', 'keyFile');
  if (ca) certificates(ca);
  const chain = cert ? certificates(cert) : [];
  let keyObject: KeyObject | undefined;
  if (key) {
    try {
      keyObject = createPrivateKey({ key: key.text, format: 'pem', ...(tls.passphrase === undefined ? {} : { passphrase: tls.passphrase }) });
    } catch {
      // OpenSSL's reason (bad decrypt, no start line) is summed up here; its text is not passed on, so no key material can be.
      problems.push({
        field: key.field,
        message: `${where(key.field)} is not a usable PEM private key (encrypted keys need connection.tls.passphrase, and it must be right)`,
      });
    }
  }
  if (keyObject && chain[0] && !chain[0].checkPrivateKey(keyObject)) {
    problems.push({ field: key!.field, message: `${where(key!.field)} is not the private key of ${where(cert!.field)}` });
  }
  return {
    material: {
      ...(ca ? { ca: ca.text } : {}),
      ...(cert ? { cert: cert.text } : {}),
      ...(key ? { key: key.text } : {}),
      ...(tls.passphrase === undefined ? {} : { passphrase: tls.passphrase }),
    },
    problems,
  };
}

/** How a cluster connection is named in errors (its `url` option is not used), and how to reach its first seed. */
interface ClusterSeeds {
  readonly label: string;
  readonly seed: { readonly host: string; readonly port: number };
  readonly redisOptions: RedisOptions;
}
const clusterSeeds = new WeakMap<Cluster, ClusterSeeds>();

/**
 * Why the first seed refuses a connection, asked with one single-node connection with the Cluster's node options.
 * ioredis' Cluster keeps only "Failed to refresh slots cache." (its CLUSTER SLOTS runs on a throw-away connection
 * whose errors it ignores), which says nothing about a certificate or a TLS port. Undefined when the seed accepts.
 */
async function probeSeed(cluster: ClusterSeeds, isTls: boolean): Promise<unknown> {
  const probe = new Redis({
    ...cluster.redisOptions,
    host: cluster.seed.host,
    port: cluster.seed.port,
    connectionName: undefined,
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    retryStrategy: () => null,
  });
  if (isTls) guardTlsStreams(probe);
  let failure: unknown;
  probe.on('error', (error: unknown) => {
    failure ??= error;
  });
  try {
    await probe.connect();
    return undefined;
  } catch (error) {
    return failure ?? error;
  } finally {
    disconnectOnce(probe);
  }
}

/** True when the connection is an ioredis `Cluster` (see `createRedisConnection`). */
export function isCluster(redis: Redis | Cluster): redis is Cluster {
  return redis instanceof Cluster;
}

/** How long a Cluster may take to become ready at start (a failover in progress takes seconds) before start fails. */
const CLUSTER_READY_WITHIN_MS = 30_000;

/**
 * Connects and waits until the connection is ready. On failure the connection is disconnected, so ioredis does not
 * keep retrying in the background of a caller that already gave up.
 *
 * A Cluster's connect() promise never settles when its first ready check fails (CLUSTER INFO says cluster_state:fail,
 * as while a master is down and not yet replaced): ioredis reconnects with a new promise of its own and the first
 * one is forgotten, though the Cluster becomes ready later. So a Cluster's start waits for its 'ready' event instead
 * (bounded: a cluster that stays down fails the start). Found by the soak: a consumer started during a failover
 * never listened.
 */
export async function connectOrThrow<T extends Redis | Cluster>(redis: T, url: string): Promise<T> {
  if (redis.status === 'ready') return redis;
  let lastError: unknown;
  const remember = (error: unknown) => {
    lastError = error;
  };
  redis.on('error', remember);
  try {
    if (isCluster(redis)) {
      const ready = waitUntilReady(redis, CLUSTER_READY_WITHIN_MS);
      ready.catch(() => undefined); // awaited below unless connect() fails first
      if (redis.status === 'wait' || redis.status === 'end') {
        const connecting = redis.connect();
        connecting.catch(() => undefined); // settled (or not) by ioredis; `ready` decides
        await Promise.race([connecting, ready]);
      }
      await ready;
    } else if (redis.status === 'wait' || redis.status === 'end') await redis.connect();
    else await waitUntilReady(redis);
    return redis;
  } catch (error) {
    disconnectOnce(redis);
    const isTls = tlsConnections.has(redis);
    const cluster = isCluster(redis) ? clusterSeeds.get(redis) : undefined;
    if (!cluster) throw new ConnectionFailedError(redact(url), describeConnectFailure(lastError ?? error, isTls));
    const seedFailure = await probeSeed(cluster, isTls);
    const cause = seedFailure === undefined ? lastError ?? error : describeConnectFailure(seedFailure, isTls, `node ${cluster.seed.host}:${cluster.seed.port}`);
    throw new ConnectionFailedError(cluster.label, cause);
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
