import type { AuditEntry } from './audit-trail.js';

/*
 * Export formats of the audit trail (the CLI's `audit export`, and anyone who reads the trail). Both are safe to open
 * whatever the records hold: JSON lines escape every control character (one record per line, always), and CSV quotes
 * every field that needs it (RFC 4180: quotes doubled, line breaks kept inside quotes) and neutralises cells a
 * spreadsheet would run as a formula (a leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'` in front, as
 * OWASP advises against CSV injection).
 */

/** Columns of the CSV export, in order. */
export const AUDIT_CSV_COLUMNS = ['id', 'time', 'actor', 'action', 'target', 'params', 'result', 'error', 'counts', 'durationMs', 'correlationId'] as const;

/** One JSON document per line; U+2028/U+2029 escaped too (JSON allows them raw, some line readers split on them). */
export function auditJsonLine(entry: AuditEntry): string {
  return `${JSON.stringify({ ...entry, time: new Date(entry.at).toISOString() }).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`)}\n`;
}

/** A CSV cell: formula prefixes neutralised, quoted when it holds a quote, comma or line break. */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The header line of the CSV export. */
export function auditCsvHeader(): string {
  return `${AUDIT_CSV_COLUMNS.join(',')}\r\n`;
}

/** One record as a CSV line (CRLF-terminated, as RFC 4180 says). */
export function auditCsvLine(entry: AuditEntry): string {
  const cells: Record<(typeof AUDIT_CSV_COLUMNS)[number], string> = {
    id: entry.id,
    time: new Date(entry.at).toISOString(),
    actor: entry.actor,
    action: entry.action,
    target: JSON.stringify(entry.target),
    params: JSON.stringify(entry.params),
    result: entry.result,
    error: entry.error ?? '',
    counts: JSON.stringify(entry.counts),
    durationMs: String(entry.durationMs),
    correlationId: entry.correlationId,
  };
  return `${AUDIT_CSV_COLUMNS.map((c) => csvCell(cells[c])).join(',')}\r\n`;
}
