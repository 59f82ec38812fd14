import type { Logger } from '@nestjs/common';
import { SchemaRegistrationError } from '../errors/schema-registration.error.js';
import { SchemaUpcastError } from '../errors/schema-upcast.error.js';
import { SchemaValidationError } from '../errors/schema-validation.error.js';
import { canRead, type BreakingChange } from './compatibility.js';
import { toHandlerInstance, type HandlerSchema } from './handler-schema.js';
import type { JsonSchema } from './json-schema.js';
import type { SchemaMetrics } from './schema-metrics.js';
import { canonicalSchema, toJsonSchema, type DtoClass } from './schema-source.js';
import type { SchemaValidator } from './schema-validator.js';

/** What a consumer hands to the handler after the schema checks of one message. */
export interface IncomingRead {
  /** The payload for the handler: unchanged, mapped to the handler's version, and/or a DTO instance. */
  readonly data: unknown;
  /** The message failed validation or could not be mapped (counted; handled anyway in `warn` mode). */
  readonly invalid: boolean;
  /** `strict` mode: dead-letter the message with this error instead of handling it. */
  readonly rejection?: Error;
}

/** The schema versions, as the reader needs them (SchemaManager, cached). */
export interface SchemaLookup {
  /** A version's JSON Schema, or null when it is not registered. */
  schemaOrNull(eventType: string, version: string): Promise<JsonSchema | null>;
  /** Versions in registration order, oldest first. */
  listVersions(eventType: string): Promise<string[]>;
  /** The latest version (may lag another instance's registration by a second); null when the type has no schema. */
  latestVersion(eventType: string): Promise<string | null>;
}

interface ReaderTarget {
  /** Validator cache key. */
  readonly key: string;
  readonly schema: JsonSchema;
  readonly canonical: string;
}

/** `<type>@<version>`, split at the last `@` (event types may contain `@`, versions never do). */
export function parseStamp(stamp: string): { eventType: string; version: string } {
  const at = stamp.lastIndexOf('@');
  return { eventType: stamp.slice(0, at), version: stamp.slice(at + 1) };
}

/**
 * Consume-side schema policy: validates each message against the version it was written with and, for handlers that
 * ask for a version or a DTO (`@StreamEvent(pattern, { schema: { version, type } })`), maps it to that version.
 *
 * Mapping a message written with version W to the handler's reader schema R:
 *   1. W must be registered (else: unknown, cannot be mapped);
 *   2. the message must be valid under W;
 *   3. R must be able to read data written with W (`canRead(R, W)`, the backward/forward rules; cached per pair),
 *      which holds for older versions a newer handler reads (upcast) and newer versions an older handler reads when
 *      the evolution was forward-compatible;
 *   4. R's JSON Schema `default`s fill the properties the message lacks, and the result must be valid under R;
 *   5. with a DTO class, `plainToInstance` builds the instance (property initialisers fill what is still missing).
 * A failure is a `SchemaUpcastError` (or `SchemaValidationError` for step 2): dead-lettered in `strict` mode,
 * logged and counted in `warn` mode (the handler then gets a best-effort mapping), never checked in `ignore` mode.
 *
 * A message without a stamp is checked as well, so leaving the stamp off bypasses nothing: against R when the
 * handler names one, else against the latest version of the pattern's event type. An event type with no schema at
 * all is not validated (emit does not refuse it either).
 */
export class SchemaReader {
  private readonly writerCanonical = new Map<string, string>();
  private readonly breaking = new Map<string, readonly BreakingChange[]>();
  private readonly dtoTargets = new WeakMap<DtoClass, ReaderTarget>();
  private dtoCount = 0;

  constructor(
    private readonly lookup: SchemaLookup,
    private readonly validator: SchemaValidator,
    /** Validates with `useDefaults`, so it fills the reader's defaults in. */
    private readonly defaults: SchemaValidator,
    private readonly metrics: SchemaMetrics,
    private readonly mode: () => 'strict' | 'warn' | 'ignore',
    private readonly logger: Logger,
  ) {}

  /**
   * Checks and maps one message. `data` is the message's own freshly decoded payload: it is completed in place.
   * Never rejects for a bad message (the outcome says what to do); rejects when the registry is unreachable or the
   * handler's own version is not registered (both retried by the consumer).
   */
  async read(pattern: string, stamp: string | undefined, data: unknown, reader: HandlerSchema | undefined): Promise<IncomingRead> {
    const writer = stamp === undefined ? undefined : parseStamp(stamp);
    if (this.mode() === 'ignore') {
      if (writer || reader) this.metrics.consumeSkipped++;
      return { data: reader ? await this.bestEffort(pattern, data, reader) : data, invalid: false };
    }
    const writerKey = writer && `${writer.eventType}@${writer.version}`;
    const writerSchema = writer ? await this.lookup.schemaOrNull(writer.eventType, writer.version) : null;
    if (writer && !writerSchema) {
      const summary = `version ${writer.version} is not registered (never registered here, deleted, or pruned by schema.maxVersions)`;
      const error = reader
        ? new SchemaUpcastError(pattern, writer.version, reader.label, [], summary)
        : new SchemaRegistrationError(writer.eventType, `${summary}; the message cannot be validated`);
      return this.problem(error, Boolean(reader), pattern, data, reader);
    }
    if (!reader) {
      const written = writer && writerSchema ? { ...writer, key: writerKey!, schema: writerSchema } : await this.assumedWriter(pattern);
      if (!written) return { data, invalid: false };
      const issues = this.validator.validate(written.key, written.schema, data);
      if (issues.length > 0) return this.problem(new SchemaValidationError(written.eventType, written.version, issues), false, pattern, data, undefined);
      this.metrics.consumeValid++;
      return { data, invalid: false };
    }

    const target = await this.target(pattern, reader);
    if (!target) {
      // The handler was deployed before its version was registered (or with a typo): every message would fail, so
      // this is retried like a failed handler (backoff, then dead-lettered as max-deliveries), not dead-lettered at once.
      throw new SchemaUpcastError(pattern, writer?.version ?? null, reader.label, [], `the handler's version ${reader.version} is not registered for "${pattern}"; register it, or fix the version in the handler's options`);
    }
    let upcast = false;
    if (writer && writerSchema && this.canonicalOf(writerKey!, writerSchema) !== target.canonical) {
      // Writer and reader differ: the message must be valid as written, and the reader must be able to read it.
      const issues = this.validator.validate(writerKey!, writerSchema, data);
      if (issues.length > 0) return this.problem(new SchemaValidationError(writer.eventType, writer.version, issues), false, pattern, data, reader, target);
      const changes = await this.breakingChanges(writer.eventType, writer.version, writerSchema, target, reader);
      if (changes.length > 0) {
        const reasons = changes.map((c) => ({ path: c.path, message: `${c.rule}: ${c.message.startsWith(`${c.path}: `) ? c.message.slice(c.path.length + 2) : c.message}` }));
        const error = new SchemaUpcastError(pattern, writer.version, reader.label, reasons, `the versions are not compatible (${changes.length} breaking change${changes.length === 1 ? '' : 's'})`);
        return this.problem(error, true, pattern, data, reader, target);
      }
      upcast = true;
    }
    // Fills the reader's defaults in (in place) and checks the result against the reader's schema.
    const issues = this.defaults.validate(target.key, target.schema, data);
    if (issues.length > 0) {
      const error = upcast || !writer
        ? new SchemaUpcastError(pattern, writer?.version ?? null, reader.label, issues, 'the payload does not satisfy the handler\'s schema')
        : new SchemaValidationError(writer.eventType, writer.version, issues);
      return this.problem(error, upcast, pattern, data, reader, target);
    }
    this.metrics.consumeValid++;
    if (upcast) this.metrics.upcast++;
    return { data: this.instance(data, reader), invalid: false };
  }

  /**
   * The version an unstamped message is checked against, for a handler that names none: the latest of the pattern's
   * event type (what a stamping producer would have written). Without it, anyone could bypass validation by leaving the
   * stamp off (raw XADD, another language, an old producer). Undefined when the type has no schema: those are not
   * validated, as emit sends them unstamped even in strict mode.
   */
  private async assumedWriter(pattern: string): Promise<{ eventType: string; version: string; key: string; schema: JsonSchema } | undefined> {
    const version = await this.lookup.latestVersion(pattern);
    const schema = version === null ? null : await this.lookup.schemaOrNull(pattern, version);
    // A latest version deleted between the two reads: the type is being cleaned up, nothing to validate against.
    return version !== null && schema ? { eventType: pattern, version, key: `${pattern}@${version}`, schema } : undefined;
  }

  /** Counts a failed message; strict: reject it; warn: log and hand over a best-effort mapping. */
  private async problem(error: Error, unmappable: boolean, pattern: string, data: unknown, reader?: HandlerSchema, target?: ReaderTarget): Promise<IncomingRead> {
    this.metrics.consumeInvalid++;
    if (unmappable) this.metrics.unmappable++;
    if (this.mode() === 'strict') return { data, invalid: true, rejection: error };
    this.logger.warn(`${error.message} (handled anyway, schema.validationMode warn)`);
    if (!reader) return { data, invalid: true };
    return { data: target ? this.fill(target, data, reader) : await this.bestEffort(pattern, data, reader), invalid: true };
  }

  /** Defaults and instance without any check (`ignore` mode, and `warn` after a failure). */
  private async bestEffort(pattern: string, data: unknown, reader: HandlerSchema): Promise<unknown> {
    const target = await this.target(pattern, reader).catch(() => undefined);
    return target ? this.fill(target, data, reader) : this.instance(data, reader);
  }

  private fill(target: ReaderTarget, data: unknown, reader: HandlerSchema): unknown {
    this.defaults.validate(target.key, target.schema, data);
    return this.instance(data, reader);
  }

  private instance(data: unknown, reader: HandlerSchema): unknown {
    return toHandlerInstance(data, reader);
  }

  /** The reader schema: the handler's registered version, else its DTO's JSON Schema; undefined when the version is unknown. */
  private async target(pattern: string, reader: HandlerSchema): Promise<ReaderTarget | undefined> {
    if (reader.version !== undefined) {
      const key = `${pattern}@${reader.version}`;
      const schema = await this.lookup.schemaOrNull(pattern, reader.version);
      return schema ? { key, schema, canonical: this.canonicalOf(key, schema) } : undefined;
    }
    const type = reader.type!;
    let target = this.dtoTargets.get(type);
    if (!target) {
      const schema = toJsonSchema(type);
      target = { key: `dto#${++this.dtoCount}:${type.name}`, schema, canonical: canonicalSchema(schema) };
      this.dtoTargets.set(type, target);
    }
    return target;
  }

  private canonicalOf(key: string, schema: JsonSchema): string {
    let canonical = this.writerCanonical.get(key);
    if (canonical === undefined) {
      canonical = canonicalSchema(schema);
      this.writerCanonical.set(key, canonical);
    }
    return canonical;
  }

  /** Can the reader read what the writer wrote? Cached per pair (versions are immutable). */
  private async breakingChanges(eventType: string, version: string, writer: JsonSchema, target: ReaderTarget, reader: HandlerSchema): Promise<readonly BreakingChange[]> {
    const key = `${eventType}@${version}\u0000${target.key}`;
    let changes = this.breaking.get(key);
    if (!changes) {
      // Only the rule ids and advice depend on which side is newer: a handler on an older version reading messages
      // of a newer one is a forward (downcast) case.
      let newer: 'reader' | 'writer' = 'reader';
      if (reader.version !== undefined) {
        const order = await this.lookup.listVersions(eventType);
        if (order.indexOf(version) > order.indexOf(reader.version) && order.includes(reader.version)) newer = 'writer';
      }
      changes = canRead(target.schema, writer, '$', { newer });
      this.breaking.set(key, changes);
    }
    return changes;
  }

  /** Forgets what was derived from a deleted version. */
  forget(key: string): void {
    this.writerCanonical.delete(key);
    for (const pair of this.breaking.keys()) {
      if (pair.startsWith(`${key}\u0000`) || pair.endsWith(`\u0000${key}`)) this.breaking.delete(pair);
    }
  }
}
