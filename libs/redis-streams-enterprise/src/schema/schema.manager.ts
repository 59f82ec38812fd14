import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { OptionalDependencyMissingError } from '../errors/optional-dependency-missing.error.js';
import { SchemaRegistrationError } from '../errors/schema-registration.error.js';
import { SchemaRegistryMissingError } from '../errors/schema-registry-missing.error.js';
import { SchemaValidationError, type SchemaIssue } from '../errors/schema-validation.error.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import { AuditTrail, type AuditContext } from '../observability/audit-trail.js';
import { checkCompatibility, type CompatibilityMode, type CompatibilityResult } from './compatibility.js';
import type { HandlerSchema } from './handler-schema.js';
import type { JsonSchema } from './json-schema.js';
import { RedisSchemaRegistry } from './redis.schema-registry.js';
import { SchemaMetrics, type SchemaMetricsSnapshot } from './schema-metrics.js';
import { SchemaReader, type IncomingRead } from './schema-reader.js';
import { SchemaRegistry } from './schema-registry.js';
import { canonicalSchema, toJsonSchema, type SchemaSource } from './schema-source.js';
import { loadAjvPackages, SchemaValidator } from './schema-validator.js';

/** A registered schema version. */
export interface SchemaVersion {
  readonly eventType: string;
  readonly version: string;
  readonly schema: JsonSchema;
}

/** Stands in for the external registry nobody provided while schema.enabled is off: every use fails, clearly. */
class MissingSchemaRegistry extends SchemaRegistry {
  private fail(): Promise<never> {
    return Promise.reject(new SchemaRegistryMissingError(SchemaManager.name));
  }
  listVersions(): Promise<string[]> {
    return this.fail();
  }
  latestVersion(): Promise<string | null> {
    return this.fail();
  }
  getVersion(): Promise<JsonSchema | null> {
    return this.fail();
  }
  addVersion(): Promise<'ok'> {
    return this.fail();
  }
  deleteVersion(): Promise<boolean> {
    return this.fail();
  }
}

/** How long "the latest version of an event type" is cached: another instance's registration is seen within this. */
const LATEST_TTL_MS = 1_000;

/**
 * A schema registry in the manner of Confluent Schema Registry: versioned schemas per event type, compatibility
 * checked at registration, payloads validated against the version they were written with, and messages mapped to the
 * version a handler asks for. A schema may be a class-validator DTO, a Standard Schema object (zod 4, ...) or a JSON
 * Schema; it is stored as JSON Schema so that every process validates alike.
 *
 * Versions are stored by a {@link SchemaRegistry}: {@link RedisSchemaRegistry} with `schema.registry: 'redis'` (the
 * default), or the implementation you provide with `schema.registry: 'external'`.
 *
 * Other instances see a new version without restart: versions are read through on first use (immutable, cached for
 * good), and "which version is the latest" is re-read at most every second.
 */
@Injectable()
export class SchemaManager implements OnApplicationShutdown {
  private readonly logger = new Logger(SchemaManager.name);
  readonly config: ResolvedRedisStreamsConfig;
  /** Where the versions are stored. */
  readonly registry: SchemaRegistry;
  /** The Redis registry this manager created (and closes); an injected registry belongs to its provider. */
  private readonly ownRegistry?: RedisSchemaRegistry;
  private readonly validator = new SchemaValidator();
  private readonly metrics = new SchemaMetrics();
  private readonly reader: SchemaReader;
  private readonly versions = new Map<string, JsonSchema>();
  private readonly latest = new Map<string, { version: string | null; at: number }>();
  /** Records registrations and deletions (compliance.audit), with a connection of its own opened on first record. */
  private readonly audit: AuditTrail;

  /**
   * @param registry required with `schema.registry: 'external'`; not allowed with `'redis'` (the manager then keeps
   *   versions in Redis itself).
   * @throws SchemaRegistryMissingError when the registry is external, none is given and schema.enabled is on (with it
   *   off, each registry operation fails with it instead).
   * @throws InvalidOptionsError for an invalid configuration, or a registry given with `schema.registry: 'redis'`.
   * @throws OptionalDependencyMissingError when schema.enabled is on and ajv or ajv-formats is not installed.
   */
  constructor(
    @Inject(REDIS_STREAMS_OPTIONS) config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig,
    @Optional() registry?: SchemaRegistry,
  ) {
    this.config = resolveConfig(config);
    this.audit = new AuditTrail(this.config);
    // The optional peers load on first use; checked here so that a missing one fails the start, not the first message.
    if (this.config.schema.enabled) loadAjvPackages();
    if (this.config.schema.registry === 'external') {
      // With schema.enabled the transport needs the registry: fail at start. Disabled, fail only when used.
      if (!registry && this.config.schema.enabled) throw new SchemaRegistryMissingError(SchemaManager.name);
      this.registry = registry ?? new MissingSchemaRegistry();
    } else {
      if (registry && !(registry instanceof RedisSchemaRegistry)) {
        // Silently ignoring a provided registry would store schemas where nobody looks for them.
        throw new InvalidOptionsError([{
          path: 'schema.registry',
          rule: 'externalWhenProvided',
          message: `schema.registry is 'redis' but a SchemaRegistry (${registry.constructor.name}) was provided; set schema.registry to 'external' to use it`,
        }]);
      }
      this.ownRegistry = registry ? undefined : new RedisSchemaRegistry(this.config);
      this.registry = registry ?? this.ownRegistry!;
    }
    this.reader = new SchemaReader(
      {
        schemaOrNull: (eventType, version) => this.schemaOrNull(eventType, version),
        listVersions: (eventType) => this.listVersions(eventType),
        latestVersion: (eventType) => this.latestVersion(eventType),
      },
      this.validator,
      new SchemaValidator({ applyDefaults: true }),
      this.metrics,
      () => this.config.schema.validationMode,
      this.logger,
    );
  }

  /**
   * Registers a schema version for an event type (the seed's `registerSchema('user.created', schema, '1.0.0',
   * 'backward')`). An identical schema already registered returns its version (no-op). With
   * `schema.compatibilityCheck`, an incompatible schema is refused with every breaking change listed.
   * @throws SchemaRegistrationError also when the schema cannot be converted (a nested DTO without `@Type(() => X)`).
   * @throws OptionalDependencyMissingError for a DTO class when class-validator-jsonschema is not installed.
   * Recorded in the audit trail (refusals too; `by` names the actor).
   */
  async registerSchema(eventType: string, source: SchemaSource, version?: string, compatibility: CompatibilityMode = 'backward', by?: AuditContext): Promise<SchemaVersion> {
    const spec = { action: 'schema.register', target: { eventType }, params: { version, compatibility } } as const;
    return this.audit.around(spec, by, () => this.registerNow(eventType, source, version, compatibility), () => ({}));
  }

  private async registerNow(eventType: string, source: SchemaSource, version: string | undefined, compatibility: CompatibilityMode): Promise<SchemaVersion> {
    const schema = this.toSchema(eventType, source);
    const canonical = canonicalSchema(schema);
    for (let attempt = 0; attempt < 5; attempt++) {
      const all = await this.history(eventType);
      const same = all.find((v) => canonicalSchema(v.schema) === canonical);
      if (same) return { eventType, version: same.version, schema: same.schema };
      const existing = all.map((v) => v.version);
      const next = version ?? this.nextVersion(eventType, existing);
      if (existing.includes(next)) {
        throw new SchemaRegistrationError(eventType, `version ${next} exists with a different schema; versions are immutable`);
      }
      if (this.config.schema.compatibilityCheck) {
        const result = checkCompatibility(all, schema, compatibility);
        if (!result.compatible) {
          throw new SchemaRegistrationError(
            eventType,
            `it is not ${compatibility}-compatible: ${result.breakingChanges.map((c) => c.message).join('; ')}`,
            result.breakingChanges,
          );
        }
      }
      const outcome = await this.registry.addVersion(eventType, next, schema, existing.at(-1) ?? null);
      if (outcome === 'ok') {
        this.versions.set(`${eventType}@${next}`, schema);
        this.latest.set(eventType, { version: next, at: Date.now() });
        this.logger.log(`Registered schema ${eventType}@${next}`);
        await this.prune(eventType);
        return { eventType, version: next, schema };
      }
      if (outcome === 'exists') throw new SchemaRegistrationError(eventType, `version ${next} was registered concurrently`);
      // 'stale': another version arrived meanwhile; check again against it
    }
    throw new SchemaRegistrationError(eventType, 'other registrations kept arriving; try again');
  }

  /** Checks a schema against the registered versions without registering it (dry run). */
  async checkCompatibility(eventType: string, source: SchemaSource, compatibility: CompatibilityMode = 'backward'): Promise<CompatibilityResult> {
    return checkCompatibility(await this.history(eventType), this.toSchema(eventType, source), compatibility);
  }

  /** A version's schema, or the latest when no version is given; null when there is none. */
  async getSchema(eventType: string, version?: string): Promise<SchemaVersion | null> {
    const v = version ?? (await this.latestVersion(eventType));
    if (!v) return null;
    const schema = await this.schemaOrNull(eventType, v);
    return schema ? { eventType, version: v, schema } : null;
  }

  /** Versions of an event type in registration order. */
  async listVersions(eventType: string): Promise<string[]> {
    return this.registry.listVersions(eventType);
  }

  /** Deletes one version (messages written with it can no longer be validated: they are dead-lettered in strict mode). */
  async deleteVersion(eventType: string, version: string, by?: AuditContext): Promise<boolean> {
    const spec = { action: 'schema.delete', target: { eventType }, params: { version } } as const;
    const removed = await this.audit.around(spec, by, () => this.registry.deleteVersion(eventType, version), (r) => ({ deleted: r ? 1 : 0 }));
    const key = `${eventType}@${version}`;
    this.versions.delete(key);
    this.validator.forget(key);
    this.reader.forget(key);
    this.latest.delete(eventType);
    return removed;
  }

  /** The latest version (cached for a second); null when the event type has no schema. */
  async latestVersion(eventType: string): Promise<string | null> {
    const cached = this.latest.get(eventType);
    if (cached && Date.now() - cached.at < LATEST_TTL_MS) return cached.version;
    const version = await this.registry.latestVersion(eventType);
    this.latest.set(eventType, { version, at: Date.now() });
    return version;
  }

  /**
   * Validates a payload against a version (default: the latest); returns the issues, empty when valid.
   * @throws SchemaRegistrationError when the version is not registered.
   */
  async validate(eventType: string, data: unknown, version?: string): Promise<{ version: string | null; issues: SchemaIssue[] }> {
    const v = version ?? (await this.latestVersion(eventType));
    if (!v) return { version: null, issues: [] };
    const schema = await this.schemaOrNull(eventType, v);
    if (!schema) throw new SchemaRegistrationError(eventType, `version ${v} is not registered`);
    return { version: v, issues: this.validator.validate(`${eventType}@${v}`, schema, data) };
  }

  /**
   * Emit-side policy (what `RedisStreamsClient` does for each `emit`/`send` with `schema.enabled`): validates the
   * payload against the latest version of its event type and returns the `<type>@<version>` stamp, or undefined when
   * the event type has no schema. `strict`: an invalid payload is refused; `warn`: logged and stamped; `ignore`:
   * stamped without validation. Counted in {@link getMetrics}.
   * @throws SchemaValidationError in strict mode, listing each failed rule with its path.
   */
  async stampOutgoing(eventType: string, payload: unknown): Promise<string | undefined> {
    const mode = this.config.schema.validationMode;
    if (mode === 'ignore') {
      const version = await this.latestVersion(eventType);
      if (!version) return undefined;
      this.metrics.emitSkipped++;
      return `${eventType}@${version}`;
    }
    const { version, issues } = await this.validate(eventType, payload);
    if (!version) return undefined;
    if (issues.length === 0) {
      this.metrics.emitValid++;
    } else {
      this.metrics.emitInvalid++;
      if (mode === 'strict') throw new SchemaValidationError(eventType, version, issues);
      this.logger.warn(`Payload of "${eventType}" does not match schema ${version} (sent anyway, schema.validationMode warn): ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`);
    }
    return `${eventType}@${version}`;
  }

  /**
   * Consume-side policy for one message: validates it against the version it was written with (`stamp`) and, when
   * the handler asks for a version or DTO, maps it to that (see `SchemaReader`). `data` is completed in place.
   * Counted in {@link getMetrics}.
   */
  readIncoming(pattern: string, stamp: string | undefined, data: unknown, reader?: HandlerSchema): Promise<IncomingRead> {
    return this.reader.read(pattern, stamp, data, reader);
  }

  /** Validation counts of this manager, on emit and on consume, with the mode they were taken in. */
  getMetrics(): SchemaMetricsSnapshot {
    return this.metrics.snapshot(this.config.schema.validationMode);
  }

  /** Closes the Redis registry this manager created (an injected registry is closed by its own provider). Idempotent. */
  async close(): Promise<void> {
    await this.audit.close();
    await this.ownRegistry?.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** A version's schema (cached for good once found: versions are immutable); null when it is not registered. */
  private async schemaOrNull(eventType: string, version: string): Promise<JsonSchema | null> {
    const key = `${eventType}@${version}`;
    const cached = this.versions.get(key);
    if (cached) return cached;
    const schema = await this.registry.getVersion(eventType, version);
    if (schema) this.versions.set(key, schema);
    return schema;
  }

  /** Every registered version with its schema, oldest first. */
  private async history(eventType: string): Promise<{ version: string; schema: JsonSchema }[]> {
    const existing = await this.listVersions(eventType);
    const all = await Promise.all(existing.map(async (v) => ({ version: v, schema: await this.schemaOrNull(eventType, v) })));
    // A version deleted between the two reads is no longer part of the history.
    return all.filter((v): v is { version: string; schema: JsonSchema } => v.schema !== null);
  }

  /** The JSON Schema of what is registered; a source that cannot be converted is refused like any bad registration. */
  private toSchema(eventType: string, source: SchemaSource): JsonSchema {
    try {
      return toJsonSchema(source);
    } catch (error) {
      if (error instanceof OptionalDependencyMissingError) throw error; // the installation is at fault, not the schema
      // The source's own declaration is at fault (a nested DTO without @Type, a zod schema without JSON Schema).
      throw new SchemaRegistrationError(eventType, error instanceof Error ? error.message : String(error));
    }
  }

  /** The next version under `schema.versioningStrategy`, for registrations without one (`autoEvolution`). */
  private nextVersion(eventType: string, existing: string[]): string {
    if (!this.config.schema.autoEvolution) {
      throw new SchemaRegistrationError(eventType, 'no version given and schema.autoEvolution is off');
    }
    const last = existing.at(-1);
    switch (this.config.schema.versioningStrategy) {
      case 'incremental':
        return String((last ? Number(last) : 0) + 1);
      case 'timestamp':
        return String(Math.max(Date.now(), last ? Number(last) + 1 : 0));
      default: {
        const [major, minor] = (last ?? '0.0.0').split('.').map(Number);
        return last ? `${major}.${minor + 1}.0` : '1.0.0';
      }
    }
  }

  /** Keeps at most schema.maxVersions versions, dropping the oldest (logged: messages written with them can no longer be validated). */
  private async prune(eventType: string): Promise<void> {
    const versions = await this.listVersions(eventType);
    const excess = versions.length - this.config.schema.maxVersions;
    for (const version of versions.slice(0, Math.max(0, excess))) {
      await this.deleteVersion(eventType, version);
      this.logger.warn(`Pruned schema ${eventType}@${version} (schema.maxVersions): retained messages written with it can no longer be validated`);
    }
  }
}
