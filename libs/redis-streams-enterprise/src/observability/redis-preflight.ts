/**
 * Start-up checks of the Redis server a server consumes from: settings that silently lose streams or acknowledged
 * work are named once, in the log and in `getStatus()`, instead of being found after the loss. Only what the user may
 * read is read (INFO, and CONFIG GET when the ACL allows it); what cannot be read is reported as not verified, never
 * as a failure: the checks never stop a server from starting.
 */
import type { Cluster, Redis } from 'ioredis';
import { escapeControl, errorText } from './log-format.js';
import { withinMs } from '../runtime/within-ms.js';

/** Redis 6.2 is the floor (XAUTOCLAIM, XPENDING IDLE, XADD NOMKSTREAM). */
export const MINIMUM_REDIS_VERSION = '6.2.0';

/** What the start-up checks found (`getStatus().preflight`). */
export interface RedisPreflightReport {
  /** `redis_version` of INFO (Valkey reports the Redis version it is compatible with). */
  readonly serverVersion: string | null;
  readonly maxmemoryPolicy: string | null;
  readonly aofEnabled: boolean | null;
  /** From CONFIG GET; null when the ACL (or a renamed command) does not allow reading it. */
  readonly appendfsync: string | null;
  readonly connectedReplicas: number | null;
  /** Settings that put messages at risk, one sentence each. */
  readonly warnings: readonly string[];
  /** What could not be checked, and why. */
  readonly unverified: readonly string[];
}

/** Where findings are logged: a Nest Logger fits. */
export interface PreflightLogger {
  warn(message: string, fields?: Record<string, string>): void;
}

/** INFO's `key:value` lines. */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return fields;
}

/** CONFIG GET's reply: `[name, value]` (RESP2) or `{ name: value }` (RESP3), either as ioredis hands it over. */
function configValue(reply: unknown, name: string): string | null {
  if (Array.isArray(reply)) {
    const at = reply.findIndex((v) => String(v) === name);
    return at >= 0 && at + 1 < reply.length ? String(reply[at + 1]) : null;
  }
  if (reply instanceof Map) return reply.has(name) ? String(reply.get(name)) : null;
  if (typeof reply === 'object' && reply !== null && name in reply) return String((reply as Record<string, unknown>)[name]);
  return null;
}

/** a < b for dotted versions. */
export function versionBelow(a: string, b: string): boolean {
  const pa = a.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const pb = b.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) < (pb[i] ?? 0);
  }
  return false;
}

/** The sentences of what was found. */
export function preflightWarnings(found: Omit<RedisPreflightReport, 'warnings' | 'unverified'>, waitReplicas: number): string[] {
  const warnings: string[] = [];
  const { serverVersion, maxmemoryPolicy, aofEnabled, appendfsync, connectedReplicas } = found;
  if (serverVersion !== null && versionBelow(serverVersion, MINIMUM_REDIS_VERSION)) {
    warnings.push(`Redis ${serverVersion} is older than ${MINIMUM_REDIS_VERSION}, the oldest this library supports: reclaims and retries fail on it`);
  }
  if (maxmemoryPolicy !== null && maxmemoryPolicy !== 'noeviction') {
    warnings.push(
      `maxmemory-policy is ${maxmemoryPolicy}: at maxmemory Redis evicts keys, so streams, consumer groups, retry schedules ` +
        `and leases can vanish (${maxmemoryPolicy.startsWith('volatile') ? 'keys with a TTL: leases and reply streams' : 'any key'}); use noeviction`,
    );
  }
  if (aofEnabled === false) {
    warnings.push('AOF is off (appendonly no): after a Redis restart, entries written and acknowledged since the last RDB snapshot are lost');
  } else if (appendfsync === 'no') {
    warnings.push('appendfsync is no: the operating system decides when the AOF reaches disk, so a crash of the host loses recent writes; use everysec or always');
  }
  if (waitReplicas > 0 && connectedReplicas !== null && connectedReplicas < waitReplicas) {
    warnings.push(`connection.waitReplicas is ${waitReplicas} but the server has ${connectedReplicas} connected replicas: every publish waits and reports a replication timeout`);
  }
  return warnings;
}

/**
 * Reads INFO (version, maxmemory policy, AOF, replicas) and CONFIG GET appendfsync, and logs each finding once.
 * Never rejects; bounded by `timeoutMs` (a slow server is reported as not verified).
 */
export async function runPreflight(
  redis: Redis | Cluster,
  settings: {
    readonly waitReplicas: number;
    readonly timeoutMs?: number;
    /**
     * The ACL user of the connection. CONFIG GET is tried as `default` only: the library's least-privilege roles do
     * not grant CONFIG (it can read secrets), and a refusal would land in ACL LOG on every start.
     */
    readonly user: string;
  },
  logger: PreflightLogger,
): Promise<RedisPreflightReport> {
  const unverified: string[] = [];
  const attempt = async <T>(what: string, run: () => Promise<T>): Promise<T | undefined> => {
    try {
      const result = await withinMs(run(), settings.timeoutMs ?? 2_000);
      if (result === undefined) unverified.push(`${what}: no answer within ${settings.timeoutMs ?? 2_000} ms`);
      return result;
    } catch (error) {
      unverified.push(`${what}: ${errorText(error)}`);
      return undefined;
    }
  };
  const infoText = await attempt('INFO (version, maxmemory-policy, AOF, replicas)', () => redis.info());
  const info = parseInfo(infoText ?? '');
  let config: unknown;
  if (settings.user === 'default') {
    config = await attempt('CONFIG GET appendfsync (the ACL or a renamed command refused it: check appendfsync yourself)', () => redis.config('GET', 'appendfsync'));
  } else {
    unverified.push(`appendfsync: CONFIG GET is not tried as ACL user ${escapeControl(settings.user)} (outside the least-privilege roles); check it yourself`);
  }
  const number = (name: string) => (info.has(name) ? Number(info.get(name)) : null);
  const found = {
    serverVersion: info.get('redis_version') ?? null,
    maxmemoryPolicy: info.get('maxmemory_policy') ?? null,
    aofEnabled: info.has('aof_enabled') ? info.get('aof_enabled') === '1' : null,
    appendfsync: config === undefined ? null : configValue(config, 'appendfsync'),
    connectedReplicas: number('connected_slaves'),
  };
  const warnings = preflightWarnings(found, settings.waitReplicas).map(escapeControl);
  for (const warning of warnings) logger.warn(`Redis server check: ${warning}`, { reason: 'preflight' });
  if (unverified.length > 0) {
    logger.warn(`Redis server check: could not verify ${unverified.join('; ')}`, { reason: 'preflight-unverified' });
  }
  return { ...found, warnings, unverified };
}
