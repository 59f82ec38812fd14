import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { SchemaRegistrationError } from '../errors/schema-registration.error.js';
import type { SchemaIssue } from '../errors/schema-validation.error.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import { checkCompatibility, type CompatibilityMode, type CompatibilityResult } from './compatibility.js';
import type { JsonSchema } from './json-schema.js';
import { canonicalJson, toJsonSchema, type SchemaSource } from './schema-source.js';
import { SchemaValidator } from './schema-validator.js';

/** A registered schema version. */
export interface SchemaVersion {
  readonly eventType: string;
  readonly version: string;
  readonly schema: JsonSchema;
}

/** How long "the latest version of an event type" is cached: another instance's registration is seen within this. */
const LATEST_TTL_MS = 1_000;

/**
 * A schema registry in Redis, in the manner of Confluent Schema Registry: versioned schemas per event type,
 * compatibility checked at registration, payloads validated against the version they were written with.
 * A schema may be a class-validator DTO, a Standard Schema object (zod 4, ...) or a JSON Schema; it is stored as
 * JSON Schema so that every process validates alike.
 *
 * Other instances see a new version without restart: versions are read through on first use (immutable, cached for
 * good), and "which version is the latest" is re-read at most every second.
 */
@Injectable()
export class SchemaManager implements OnApplicationShutdown {
  private readonly logger = new Logger(SchemaManager.name);
  readonly config: ResolvedRedisStreamsConfig;
  private readonly keys: StreamKeys;
  private readonly connection: LazyConnection;
  private readonly validator = new SchemaValidator();
  private readonly versions = new Map<string, JsonSchema>();
  private readonly latest = new Map<string, { version: string | null; at: number }>();

  constructor(@Inject(REDIS_STREAMS_OPTIONS) config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig) {
    this.config = resolveConfig(config);
    this.keys = new StreamKeys(this.config.streams.keyPrefix);
    this.connection = new LazyConnection(this.config.connection, 'schemas', 'SchemaManager');
  }

  /**
   * Registers a schema version for an event type (the seed's `registerSchema('user.created', schema, '1.0.0',
   * 'backward')`). An identical schema already registered returns its version (no-op). With
   * `schema.compatibilityCheck`, an incompatible schema is refused with every breaking change listed.
   * @throws SchemaRegistrationError
   */
  async registerSchema(eventType: string, source: SchemaSource, version?: string, compatibility: CompatibilityMode = 'backward'): Promise<SchemaVersion> {
    const schema = toJsonSchema(source);
    const canonical = canonicalJson(schema);
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await this.listVersions(eventType);
      const all = await Promise.all(existing.map(async (v) => ({ version: v, schema: await this.schemaOf(eventType, v) })));
      const same = all.find((v) => canonicalJson(v.schema) === canonical);
      if (same) return { eventType, version: same.version, schema: same.schema };
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
      const redis = await this.connection.get();
      const outcome = await redis.rseRegisterSchema(this.keys.schemaVersions(eventType), this.keys.schemaOrder(eventType), existing.at(-1) ?? '', next, canonical);
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
    const existing = await this.listVersions(eventType);
    const all = await Promise.all(existing.map(async (v) => ({ version: v, schema: await this.schemaOf(eventType, v) })));
    return checkCompatibility(all, toJsonSchema(source), compatibility);
  }

  /** A version's schema, or the latest when no version is given; null when there is none. */
  async getSchema(eventType: string, version?: string): Promise<SchemaVersion | null> {
    const v = version ?? (await this.latestVersion(eventType));
    if (!v) return null;
    const schema = await this.schemaOf(eventType, v).catch(() => null);
    return schema ? { eventType, version: v, schema } : null;
  }

  /** Versions of an event type in registration order. */
  async listVersions(eventType: string): Promise<string[]> {
    const redis = await this.connection.get();
    return redis.lrange(this.keys.schemaOrder(eventType), 0, -1);
  }

  /** Deletes one version (messages written with it can no longer be validated: they are dead-lettered in strict mode). */
  async deleteVersion(eventType: string, version: string): Promise<boolean> {
    const redis = await this.connection.get();
    const [[, removed]] = (await redis.multi().hdel(this.keys.schemaVersions(eventType), version).lrem(this.keys.schemaOrder(eventType), 0, version).exec()) as [[Error | null, number]];
    this.versions.delete(`${eventType}@${version}`);
    this.latest.delete(eventType);
    return removed === 1;
  }

  /** The latest version (cached for a second); null when the event type has no schema. */
  async latestVersion(eventType: string): Promise<string | null> {
    const cached = this.latest.get(eventType);
    if (cached && Date.now() - cached.at < LATEST_TTL_MS) return cached.version;
    const redis = await this.connection.get();
    const version = await redis.lindex(this.keys.schemaOrder(eventType), -1);
    this.latest.set(eventType, { version, at: Date.now() });
    return version;
  }

  /** Validates a payload against a version (default: the latest); returns the issues, empty when valid. */
  async validate(eventType: string, data: unknown, version?: string): Promise<{ version: string | null; issues: SchemaIssue[] }> {
    const v = version ?? (await this.latestVersion(eventType));
    if (!v) return { version: null, issues: [] };
    const schema = await this.schemaOf(eventType, v);
    return { version: v, issues: this.validator.validate(`${eventType}@${v}`, schema, data) };
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  private async schemaOf(eventType: string, version: string): Promise<JsonSchema> {
    const key = `${eventType}@${version}`;
    const cached = this.versions.get(key);
    if (cached) return cached;
    const redis = await this.connection.get();
    const text = await redis.hget(this.keys.schemaVersions(eventType), version);
    if (text === null) throw new SchemaRegistrationError(eventType, `version ${version} is not registered`);
    const schema = JSON.parse(text) as JsonSchema;
    this.versions.set(key, schema);
    return schema;
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
