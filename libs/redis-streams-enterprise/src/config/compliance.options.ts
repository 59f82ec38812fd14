import { Type } from 'class-transformer';
import { IsBoolean, IsInt, IsObject, IsOptional, IsString, Matches, Max, Min, ValidateNested } from 'class-validator';
import type { ConfigViolation } from '../errors/invalid-options.error.js';

/*
 * Compliance: the audit trail of operator actions and erasure by subject (the compliance capability). This file
 * types, validates and defaults the section; `compliance.actor` may also be a function (taken out before validation
 * like the other non-data members, see validate-options.ts).
 */

/** Most subject locations one configuration may name. */
export const MAX_SUBJECT_LOCATIONS = 1_000;
/** A payload field path: names separated by dots (`customer.id`). */
export const SUBJECT_FIELD = /^[A-Za-z0-9_$-]{1,128}(\.[A-Za-z0-9_$-]{1,128}){0,15}$/;
/** A header name, as the wire format allows them. */
export const SUBJECT_HEADER = /^[A-Za-z0-9._-]{1,128}$/;
/** An actor name: printable, one line, bounded (it is written to the audit trail and printed by the CLI). */
export const ACTOR = /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]{1,200}$/;

/** Where the subject of a topic's messages is: a payload field (dots for nesting) or a header. */
export type SubjectLocation = { readonly field: string; readonly header?: never } | { readonly header: string; readonly field?: never };

/** Who performs an operator action, asked once per recorded action. */
export type AuditActorSource = string | (() => string);

/** The append-only audit trail of operator actions (`<prefix>:{#audit}`). */
export class AuditOptions {
  /**
   * Record every operator action (redrive, purge, delete, replay, group reset, partition rescale, schema registration
   * and deletion, erasure) with who, what, when and the result.
   * @default true
   */
  @IsBoolean()
  enabled = true;

  /** Entries kept, at least (trimmed with `MAXLEN ~`, so a little more may stay). @default 100000 */
  @IsInt()
  @Min(100)
  @Max(100_000_000)
  maxLen = 100_000;

  /**
   * Also drop entries older than this (exactly, `MINID`, by the Redis server's clock) when the next one is written;
   * unset: never by age.
   * @default undefined
   */
  @IsOptional()
  @IsInt()
  @Min(60_000)
  @Max(100 * 365 * 86_400_000)
  retentionMs?: number;
}

/** Audit trail and erasure by subject (GDPR right to erasure). */
export class ComplianceOptions {
  /**
   * Who performs the operator actions of this process, as written to the audit trail: a name, or a function asked per
   * action (e.g. the user of the current request); each call may override it. Unset: `process:<user>@<host>`.
   * @default undefined
   */
  @IsOptional()
  @IsString()
  @Matches(ACTOR, { message: 'must be 1-200 characters without control characters' })
  actor?: AuditActorSource;

  @ValidateNested() @Type(() => AuditOptions) audit: AuditOptions = new AuditOptions();

  /**
   * Where the data subject of each topic's messages is, by pattern or glob (`picomatch`, e.g. `orders.*`): `{ field:
   * 'customer.id' }` (a payload field, dots for nesting) or `{ header: 'x-subject' }`. An exact pattern wins over a
   * glob; among globs, the first listed. Topics not named here are not searched by `erase`.
   * @default {}
   */
  @IsObject()
  subjects: Readonly<Record<string, SubjectLocation>> = {};
}

/** Rules class-validator cannot express on the `subjects` map. */
export function complianceViolations(compliance: ComplianceOptions, actor: unknown): ConfigViolation[] {
  const out: ConfigViolation[] = [];
  const add = (path: string, rule: string, message: string) => out.push({ path, rule, message: `${path} ${message}` });
  if (actor !== undefined && typeof actor !== 'function') add('compliance.actor', 'isActor', 'must be a string or a function');
  const entries = Object.entries(compliance.subjects);
  if (entries.length > MAX_SUBJECT_LOCATIONS) add('compliance.subjects', 'maxSize', `must not name more than ${MAX_SUBJECT_LOCATIONS} topics`);
  for (const [pattern, location] of entries.slice(0, MAX_SUBJECT_LOCATIONS)) {
    const path = `compliance.subjects.${JSON.stringify(pattern.slice(0, 64))}`;
    if (pattern.length === 0 || pattern.length > 1_024) add(path, 'patternLength', 'must be a pattern or glob of 1-1024 characters');
    const value = location as unknown as Record<string, unknown> | null;
    const shape = typeof value === 'object' && value !== null ? Object.keys(value) : [];
    if (shape.length !== 1 || (shape[0] !== 'field' && shape[0] !== 'header')) {
      add(path, 'fieldOrHeader', "must be { field: '<payload path>' } or { header: '<header name>' }");
    } else if (shape[0] === 'field' && !(typeof value!.field === 'string' && SUBJECT_FIELD.test(value!.field))) {
      add(`${path}.field`, 'fieldPath', 'must be payload field names separated by dots (e.g. customer.id)');
    } else if (shape[0] === 'header' && !(typeof value!.header === 'string' && SUBJECT_HEADER.test(value!.header))) {
      add(`${path}.header`, 'headerName', 'must be a header name of 1-128 characters [A-Za-z0-9._-]');
    }
  }
  return out;
}

/** Freezes the section deeply (the validated configuration is immutable). */
export function freezeCompliance(compliance: ComplianceOptions): void {
  for (const location of Object.values(compliance.subjects)) Object.freeze(location);
  Object.freeze(compliance.subjects);
  Object.freeze(compliance.audit);
  Object.freeze(compliance);
}
