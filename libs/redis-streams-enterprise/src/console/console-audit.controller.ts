import { Get, Injectable, Optional, Query } from '@nestjs/common';
import { ComplianceManager } from '../compliance/compliance.manager.js';
import type { AuditEntry } from '../observability/audit-trail.js';
import { clip, entryIdParam, limitParam, timeParam } from './console-input.js';
import { SecureHeaders } from './console-headers.js';

/** How far back the panel looks when not told. */
const DEFAULT_SINCE_MS = 86_400_000;

/** An audit record as the page shows it (every text came from Redis: cut, and shown as text). */
function row(entry: AuditEntry) {
  const texts = (record: Readonly<Record<string, unknown>>) => clip(JSON.stringify(record));
  return {
    id: entry.id,
    at: new Date(entry.at).toISOString(),
    actor: clip(entry.actor),
    action: clip(entry.action),
    target: texts(entry.target),
    params: texts(entry.params),
    result: entry.result,
    error: entry.error === undefined ? null : clip(entry.error),
    counts: texts(entry.counts),
    durationMs: entry.durationMs,
  };
}

/** The console's audit panel: the operator actions recorded in the audit trail (`compliance.audit`), oldest first. */
@Injectable()
export class ConsoleAuditController {
  constructor(@Optional() private readonly compliance?: ComplianceManager) {}

  /** A page of records since `since` (default: the last 24 h) after the record `after`; `next` continues. */
  @Get('api/audit')
  @SecureHeaders()
  async list(@Query('since') since?: string, @Query('after') after?: string, @Query('limit') limit?: string) {
    const trail = this.compliance?.auditTrail;
    if (!trail || !trail.enabled) return { enabled: false, items: [], next: null };
    const size = limitParam(limit);
    const from = timeParam(since, 'since') ?? Date.now() - DEFAULT_SINCE_MS;
    const cursor = after === undefined || after === '' ? undefined : entryIdParam(after, 'after');
    const entries = await trail.read({ since: from, count: size + 1, ...(cursor ? { after: cursor } : {}) });
    const items = entries.slice(0, size).map(row);
    return { enabled: true, since: new Date(from).toISOString(), items, next: entries.length > size ? items[items.length - 1].id : null };
  }
}
