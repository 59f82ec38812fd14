import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { InvalidUsageError } from '../errors/invalid-usage.error.js';
import { AuditTrail, type AuditContext } from '../observability/audit-trail.js';
import { EncryptionKeyProvider } from '../payload-codec/key-ring.js';
import { PayloadCodec } from '../payload-codec/payload-codec.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import { erasurePass, type ErasureContext, type StreamErasure, type UnreadableEntry } from './erasure.js';
import { reportHead, streamReport, type RetentionReport, type RetentionReportRequest } from './retention-report.js';
import { catalogStreams, type CatalogStream } from './stream-catalog.js';
import { SubjectLocator, topicFilter } from './subject-locator.js';

/** What `ComplianceManager.erase` is asked to do. */
export interface ErasureRequest {
  /** The subject's identifier, compared with the field or header compliance.subjects names for each topic. */
  readonly subject: string;
  /** Only messages of these patterns (globs allowed). @default every topic compliance.subjects names */
  readonly topics?: readonly string[];
  /** Only find and count; delete nothing. @default false */
  readonly dryRun?: boolean;
}

/** What an erasure found, deleted, and what the scan afterwards found left. */
export interface ErasureReport {
  /** SHA-256 (hex) of the subject: the report, the log and the audit trail never hold the subject in clear. */
  readonly subjectSha256: string;
  readonly dryRun: boolean;
  readonly topics: readonly string[] | null;
  readonly streamsScanned: number;
  readonly entriesScanned: number;
  /** Streams that held entries of the subject, with what was done to each. */
  readonly streams: readonly StreamErasure[];
  readonly totals: { readonly matched: number; readonly deleted: number; readonly replayCopies: number; readonly pendingAcked: number; readonly blobsDeleted: number };
  /** Entries of the searched topics whose subject could not be checked (at most 100 listed, all counted). */
  readonly unreadable: readonly UnreadableEntry[];
  readonly unreadableCount: number;
  /**
   * The scan after the erasure (not on a dry run): every stream read again. `remaining` counts entries of the subject
   * still found (0 unless a producer wrote new ones meanwhile); `clean` is `remaining === 0`.
   */
  readonly verification: { readonly entriesScanned: number; readonly remaining: number; readonly unreadableCount: number; readonly clean: boolean } | null;
  readonly durationMs: number;
}

const MAX_SUBJECT_LENGTH = 1_024;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Compliance operations: erasure by subject (GDPR right to erasure) over every stream of the prefix — topics and their
 * partitions, dead letters, replay copies and claim-check blobs — proven by a scan afterwards, and the retention
 * report. Both are recorded in the audit trail (the subject as its SHA-256 only). See the Compliance docs page for
 * what cannot be erased.
 *
 * ```ts
 * const report = await compliance.erase({ subject: 'customer-42' }, { actor: 'dpo@example.com' });
 * if (!report.verification?.clean) throw new Error('entries of the subject remain');
 * ```
 */
@Injectable()
export class ComplianceManager implements OnApplicationShutdown {
  private readonly logger = new Logger(ComplianceManager.name);
  readonly config: ResolvedRedisStreamsConfig;
  private readonly keys: StreamKeys;
  private readonly connection: LazyConnection;
  private readonly audit: AuditTrail;
  private readonly locator: SubjectLocator;
  /** Opens encrypted payloads to find their subject; plaintext entries are read whatever encryption.acceptPlaintext says. */
  private readonly codec: PayloadCodec;

  constructor(
    @Inject(REDIS_STREAMS_OPTIONS) config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig,
    @Optional() keyProvider?: EncryptionKeyProvider,
  ) {
    this.config = resolveConfig(config);
    this.keys = new StreamKeys(this.config.streams.keyPrefix);
    this.connection = new LazyConnection(this.config.connection, 'compliance', ComplianceManager.name);
    this.audit = new AuditTrail(this.config, () => this.redis());
    this.locator = new SubjectLocator(this.config.compliance.subjects);
    const reading = { ...this.config, encryption: { ...this.config.encryption, acceptPlaintext: true } } as ResolvedRedisStreamsConfig;
    this.codec = new PayloadCodec(reading, keyProvider);
  }

  /** The audit trail of this prefix (read it with `read({ since, count })`). */
  get auditTrail(): AuditTrail {
    return this.audit;
  }

  /**
   * Finds every entry of the subject in the topics compliance.subjects names (or `topics`) and deletes it with its
   * claim-check blob, acknowledging the pending entries consumer groups held of it; then scans again.
   * @throws InvalidUsageError when the subject is empty or too long, or no topic is configured.
   */
  async erase(request: ErasureRequest, by?: AuditContext): Promise<ErasureReport> {
    const subject = typeof request.subject === 'string' ? request.subject : '';
    const dryRun = request.dryRun ?? false;
    const topics = request.topics && request.topics.length > 0 ? [...request.topics] : null;
    const spec = { action: 'compliance.erase', target: { topics: topics ?? ['*'] }, params: { subjectSha256: sha256(subject), dryRun } } as const;
    return this.audit.around(spec, by, () => this.eraseNow(subject, topics, dryRun), (r) => ({
      matched: r.totals.matched,
      deleted: r.totals.deleted,
      pendingAcked: r.totals.pendingAcked,
      blobsDeleted: r.totals.blobsDeleted,
      unreadable: r.unreadableCount,
      remaining: r.verification?.remaining ?? r.totals.matched,
    }));
  }

  /**
   * Per stream (topic and partition) of the prefix: length, oldest entry, entries removed, entries each group lost to
   * trimming, dead letters older than `deadLetterOlderThanDays`; with the policy of this configuration.
   */
  async retentionReport(request: RetentionReportRequest = {}): Promise<RetentionReport> {
    const days = request.deadLetterOlderThanDays ?? 30;
    if (!Number.isFinite(days) || days < 0) throw new InvalidUsageError('deadLetterOlderThanDays must be a number of days, 0 or more');
    const redis = await this.redis();
    const head = await reportHead(redis, this.config, days);
    const matches = topicFilter(request.topics);
    const streams = [];
    for (const stream of liveStreamsOf(await catalogStreams(redis, this.keys))) {
      const report = await streamReport(redis, this.keys, this.config, stream, days);
      if (!matches || (report.pattern !== null && matches(report.pattern))) streams.push(report);
    }
    return { ...head, streams };
  }

  /** Closes the connection (called by Nest on shutdown). Idempotent. */
  async close(): Promise<void> {
    await this.connection.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  private async eraseNow(subject: string, topics: string[] | null, dryRun: boolean): Promise<ErasureReport> {
    const started = Date.now();
    if (subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) {
      throw new InvalidUsageError(`erase needs a subject of 1-${MAX_SUBJECT_LENGTH} characters`);
    }
    if (this.locator.isEmpty) {
      throw new InvalidUsageError('erase needs compliance.subjects: name the payload field or header that holds the subject of each topic');
    }
    const redis = await this.redis();
    const ctx: ErasureContext = {
      redis,
      keys: this.keys,
      locator: this.locator,
      codec: this.codec,
      maxPayloadBytes: this.config.streams.maxPayloadBytes,
      subject,
      ...(topics === null ? {} : { topics: topicFilter(topics) }),
    };
    const streams = await catalogStreams(redis, this.keys);
    const pass = await erasurePass(ctx, streams, !dryRun);
    const sum = (pick: (s: StreamErasure) => number) => pass.streams.reduce((n, s) => n + pick(s), 0);
    const totals = {
      matched: sum((s) => s.matched),
      deleted: sum((s) => s.deleted),
      replayCopies: sum((s) => s.replayCopies),
      pendingAcked: sum((s) => s.pendingAcked),
      blobsDeleted: pass.blobsDeleted,
    };
    let verification: ErasureReport['verification'] = null;
    if (!dryRun) {
      // The proof: read everything again, deleting nothing, and count what is still about the subject.
      const check = await erasurePass(ctx, await catalogStreams(redis, this.keys), false);
      const remaining = check.streams.reduce((n, s) => n + s.matched, 0);
      verification = { entriesScanned: check.entriesScanned, remaining, unreadableCount: check.unreadableCount, clean: remaining === 0 };
    }
    const hash = sha256(subject);
    this.logger.log(
      `Erasure${dryRun ? ' (dry run)' : ''} of subject sha256=${hash.slice(0, 16)}…: ${totals.matched} entries found in ${pass.streams.length} streams, ` +
        `${totals.deleted} deleted, ${totals.pendingAcked} pending entries acknowledged, ${totals.blobsDeleted} blobs deleted, ` +
        `${pass.unreadableCount} unreadable${verification ? `, ${verification.remaining} remaining after the check` : ''}`,
    );
    return {
      subjectSha256: hash,
      dryRun,
      topics,
      streamsScanned: pass.streamsScanned,
      entriesScanned: pass.entriesScanned,
      streams: pass.streams,
      totals,
      unreadable: pass.unreadable,
      unreadableCount: pass.unreadableCount,
      verification,
      durationMs: Date.now() - started,
    };
  }

  private redis(): Promise<ScriptedRedis> {
    return this.connection.get();
  }
}

/** The live streams of a catalog, plus the owners of dead-letter streams whose stream is gone. */
function liveStreamsOf(catalog: readonly CatalogStream[]): CatalogStream[] {
  const live = catalog.filter((s) => s.kind === 'live');
  const known = new Set(live.map((s) => s.key));
  for (const s of catalog) {
    if (s.kind === 'dead-letter' && !known.has(s.owner)) {
      known.add(s.owner);
      live.push({ ...s, key: s.owner, kind: 'live' });
    }
  }
  return live.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
