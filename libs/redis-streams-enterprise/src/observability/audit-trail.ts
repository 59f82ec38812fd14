import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import { ACTOR } from '../config/compliance.options.js';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { parseEntry } from '../connection/redis-replies.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { errorText, escapeControl } from './log-format.js';

/*
 * The audit trail: one append-only stream per prefix (`<prefix>:{#audit}`, see stream-keys.ts) where every operator
 * action is recorded with who, what, when and the result, also when it failed. Entries are only ever added (XADD) and
 * trimmed from the old end (MAXLEN ~ compliance.audit.maxLen, and MINID with compliance.audit.retentionMs); nothing
 * in the library edits or deletes one (MINID is exact: no record older than retentionMs survives the next write). Fields:
 *   actor    who (compliance.actor, or the call's `actor`), escaped, at most 200 characters
 *   action   what (AuditAction)
 *   target   JSON object of strings or string lists: pattern(s), stream, group, event type
 *   params   JSON object of the call's parameters, bounded (strings cut to 200 characters, lists to 20 items, the
 *            whole to 4 KB) and escaped; never a payload or a subject in clear (erase records its SHA-256)
 *   result   'ok' or 'error'
 *   error    with 'error': the error's name and message, escaped, at most 500 characters
 *   counts   JSON object of numbers (entries redriven, deleted, replayed, ...)
 *   at       ms time the action started (the caller's clock; the entry id is the Redis server's time of the record)
 *   ms       how long it took
 *   cid      correlation id (the call's, or a random UUID)
 */

/** The operator actions the library records. */
export type AuditAction =
  | 'dlq.redrive'
  | 'dlq.purge'
  | 'dlq.delete'
  | 'replay.handlers'
  | 'replay.stream'
  | 'replay.reset-group'
  | 'partitions.scale'
  | 'schema.register'
  | 'schema.delete'
  | 'compliance.erase';

/** Who performs one call, and the id that ties its record to the caller's own logs. */
export interface AuditContext {
  /** Overrides `compliance.actor` for this call. */
  readonly actor?: string;
  /** Written as `cid`; a random UUID when not given. */
  readonly correlationId?: string;
}

/** One recorded action, as `AuditTrail.read` returns it. Every string came from Redis: treat it as untrusted. */
export interface AuditEntry {
  /** Entry id of the record (its time is the Redis server's time of the record). */
  readonly id: string;
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly target: Readonly<Record<string, string | readonly string[]>>;
  readonly params: Readonly<Record<string, unknown>>;
  readonly result: 'ok' | 'error';
  readonly error?: string;
  readonly counts: Readonly<Record<string, number>>;
  readonly durationMs: number;
  readonly correlationId: string;
}

/** What `AuditTrail.read` returns: at most `count` entries, oldest first, between `since` and `until`. */
export interface AuditQuery {
  readonly since?: number | Date;
  readonly until?: number | Date;
  /** Only entries after this entry id (paging). */
  readonly after?: string;
  /** @default 100 (at most 10000) */
  readonly count?: number;
}

type Target = Record<string, string | readonly string[] | undefined>;

/** What an action is about and how it was asked for. */
export interface AuditSpec {
  readonly action: AuditAction;
  readonly target: Target;
  readonly params?: Record<string, unknown>;
}

const MAX_TEXT = 200;
const MAX_LIST = 20;
const MAX_JSON = 4_096;
const MAX_READ = 10_000;
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const text = (value: string, max = MAX_TEXT) => escapeControl(value.slice(0, max));

/** A parameter value reduced to bounded, escaped JSON: strings cut, lists shortened, objects flattened to text. */
function boundValue(value: unknown): unknown {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return text(value);
  if (value instanceof Date) return value.getTime();
  if (value instanceof RegExp) return text(String(value));
  if (Array.isArray(value)) return value.slice(0, MAX_LIST).map((v) => (typeof v === 'string' ? text(v) : boundValue(v)));
  if (value === undefined) return undefined;
  return typeof value === 'function' ? '(function)' : '(object)';
}

/** JSON of an object whose values are bounded; keys past the 4 KB budget are dropped and `truncated` set. */
export function boundedJson(record: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record).slice(0, 50)) {
    const bounded = boundValue(value);
    if (bounded === undefined) continue;
    out[text(key, 64)] = bounded;
    if (JSON.stringify(out).length > MAX_JSON) {
      delete out[text(key, 64)];
      out.truncated = true;
      break;
    }
  }
  return JSON.stringify(out);
}

function defaultActor(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry for this uid (some containers): the user stays unknown, the host still names the process
  }
  return `process:${user}@${hostname()}`;
}

/**
 * Records operator actions in the audit trail and reads them back. Writes use the caller's connection (a manager's);
 * without one, it opens its own on first use (close it with `close()`). Recording never fails the action: a record
 * that cannot be written (Redis down, no permission) is logged as an error instead.
 *
 * ```ts
 * const trail = new AuditTrail(config);
 * for (const entry of await trail.read({ since: Date.now() - 86_400_000, count: 500 })) console.log(entry.actor, entry.action);
 * ```
 */
export class AuditTrail {
  private readonly logger = new Logger(AuditTrail.name);
  private readonly keys: StreamKeys;
  private readonly own?: LazyConnection;
  private readonly connection: () => Promise<Redis | Cluster>;

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    connection?: () => Promise<Redis | Cluster>,
  ) {
    this.keys = new StreamKeys(config.streams.keyPrefix);
    if (!connection) this.own = new LazyConnection(config.connection, 'audit', AuditTrail.name);
    this.connection = connection ?? (() => this.own!.get());
  }

  /** The stream the trail is kept in. */
  get stream(): string {
    return this.keys.audit();
  }

  /** True when actions are recorded (compliance.audit.enabled). */
  get enabled(): boolean {
    return this.config.compliance.audit.enabled;
  }

  /**
   * Runs an operator action and records its outcome: `counts` of its result, or its error (rethrown unchanged).
   * The actor is resolved before the action runs (an actor function sees the caller's context).
   */
  async around<T>(spec: AuditSpec, by: AuditContext | undefined, work: () => Promise<T>, countsOf: (result: T) => Record<string, number>): Promise<T> {
    if (!this.enabled) return work();
    const at = Date.now();
    const actor = this.actorOf(by);
    const cid = by?.correlationId !== undefined && CORRELATION_ID.test(by.correlationId) ? by.correlationId : randomUUID();
    let result: T;
    try {
      result = await work();
    } catch (error) {
      await this.write(spec, actor, cid, at, { result: 'error', error: text(errorText(error), 500), counts: {} });
      throw error;
    }
    await this.write(spec, actor, cid, at, { result: 'ok', counts: countsOf(result) });
    return result;
  }

  /** Entries oldest first (bounded: at most `count`, 10000 at most). */
  async read(query: AuditQuery = {}): Promise<AuditEntry[]> {
    const ms = (t: number | Date) => Math.max(0, Math.floor(t instanceof Date ? t.getTime() : t));
    const count = Math.max(1, Math.min(MAX_READ, Math.floor(query.count ?? 100)));
    let start = query.since === undefined ? '-' : String(ms(query.since));
    if (query.after !== undefined && /^\d+-\d+$/.test(query.after)) start = `(${query.after}`;
    const end = query.until === undefined ? '+' : String(ms(query.until));
    const redis = await this.connection();
    const raw = await redis.xrange(this.keys.audit(), start, end, 'COUNT', count);
    return raw.flatMap((item) => {
      const entry = parseEntry(item);
      return entry ? [toAuditEntry(entry.id, entry.fields)] : [];
    });
  }

  /** Every entry between `since` and `until`, oldest first, read in pages of 500 (for exports). */
  async *entries(query: Omit<AuditQuery, 'count' | 'after'> = {}): AsyncGenerator<AuditEntry> {
    let after: string | undefined;
    for (;;) {
      const page = await this.read({ ...query, count: 500, ...(after === undefined ? {} : { after }) });
      yield* page;
      if (page.length < 500) return;
      after = page.at(-1)!.id;
    }
  }

  /** Closes the trail's own connection (none when it writes with the caller's). Idempotent. */
  async close(): Promise<void> {
    await this.own?.close();
  }

  private actorOf(by: AuditContext | undefined): string {
    let actor: unknown = by?.actor ?? this.config.compliance.actor;
    if (typeof actor === 'function') {
      try {
        actor = (actor as () => unknown)();
      } catch (error) {
        actor = `unknown (compliance.actor failed: ${errorText(error)})`;
      }
    }
    if (typeof actor !== 'string' || actor.length === 0) return defaultActor();
    return ACTOR.test(actor) ? actor : text(actor);
  }

  private async write(spec: AuditSpec, actor: string, cid: string, at: number, outcome: { result: 'ok' | 'error'; error?: string; counts: Record<string, number> }): Promise<void> {
    const { maxLen, retentionMs } = this.config.compliance.audit;
    const target: Record<string, string | string[]> = {};
    for (const [key, value] of Object.entries(spec.target)) {
      if (typeof value === 'string') target[key] = text(value);
      else if (Array.isArray(value)) target[key] = value.slice(0, MAX_LIST).map((v: string) => text(v));
    }
    const counts: Record<string, number> = {};
    for (const [key, value] of Object.entries(outcome.counts)) if (Number.isFinite(value)) counts[key] = value;
    const fields = [
      'actor', actor, 'action', spec.action, 'target', JSON.stringify(target), 'params', boundedJson(spec.params ?? {}),
      'result', outcome.result, ...(outcome.error === undefined ? [] : ['error', outcome.error]),
      'counts', JSON.stringify(counts), 'at', String(at), 'ms', String(Date.now() - at), 'cid', cid,
    ];
    try {
      const redis = await this.connection();
      const id = await redis.xadd(this.keys.audit(), 'MAXLEN', '~', maxLen, '*', ...fields);
      if (retentionMs !== undefined && id) {
        // Exact, not `~`: records are rare, and an age limit is a promise about every record.
        await redis.xtrim(this.keys.audit(), 'MINID', Math.max(0, Number(id.split('-')[0]) - retentionMs));
      }
    } catch (error) {
      this.logger.error(`Could not record ${spec.action} by ${actor} (${outcome.result}) in the audit trail: ${errorText(error)} stream=${this.keys.audit()}`);
    }
  }
}

const parseObject = (json: string | undefined): Record<string, unknown> => {
  try {
    const value: unknown = json === undefined ? {} : JSON.parse(json);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {}; // a record written by hand or damaged: shown without its parameters rather than not at all
  }
};

/** A stored record, validated field by field (the stream is writable by anyone with access to the prefix). */
export function toAuditEntry(id: string, f: Readonly<Record<string, string>>): AuditEntry {
  const target: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(parseObject(f.target)).slice(0, 20)) {
    if (typeof value === 'string') target[text(key, 64)] = text(value);
    else if (Array.isArray(value)) target[text(key, 64)] = value.slice(0, MAX_LIST).map((v) => text(String(v)));
  }
  const counts: Record<string, number> = {};
  for (const [key, value] of Object.entries(parseObject(f.counts)).slice(0, 50)) if (typeof value === 'number') counts[text(key, 64)] = value;
  const params = JSON.parse(boundedJson(parseObject(f.params))) as Record<string, unknown>;
  const number = (value: string | undefined) => (value !== undefined && /^\d{1,16}$/.test(value) ? Number(value) : 0);
  return {
    id,
    at: number(f.at),
    actor: text(f.actor ?? ''),
    action: text(f.action ?? '', 64),
    target,
    params,
    result: f.result === 'ok' ? 'ok' : 'error',
    ...(f.error === undefined ? {} : { error: text(f.error, 500) }),
    counts,
    durationMs: number(f.ms),
    correlationId: text(f.cid ?? '', 128),
  };
}
