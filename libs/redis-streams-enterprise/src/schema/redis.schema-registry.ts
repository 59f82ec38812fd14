import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { StreamKeys } from '../connection/stream-keys.js';
import type { JsonSchema } from './json-schema.js';
import { canonicalJson } from './schema-source.js';
import { SchemaRegistry, type AddVersionOutcome } from './schema-registry.js';

/**
 * Schema versions in Redis (`schema.registry: 'redis'`, the default): per event type a hash version -> canonical JSON
 * Schema and a list of the versions in registration order, both under one hash tag (Cluster-safe; key names come from
 * `StreamKeys`). A registration is one Lua script that appends only if the latest version is still the one the
 * compatibility check ran against. The connection opens on first use.
 */
export class RedisSchemaRegistry extends SchemaRegistry {
  private readonly keys: StreamKeys;
  private readonly connection: LazyConnection;

  constructor(config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig) {
    super();
    const resolved = resolveConfig(config);
    this.keys = new StreamKeys(resolved.streams.keyPrefix);
    this.connection = new LazyConnection(resolved.connection, 'schemas', RedisSchemaRegistry.name);
  }

  async listVersions(eventType: string): Promise<string[]> {
    const redis = await this.connection.get();
    return redis.lrange(this.keys.schemaOrder(eventType), 0, -1);
  }

  async latestVersion(eventType: string): Promise<string | null> {
    const redis = await this.connection.get();
    return redis.lindex(this.keys.schemaOrder(eventType), -1);
  }

  async getVersion(eventType: string, version: string): Promise<JsonSchema | null> {
    const redis = await this.connection.get();
    const text = await redis.hget(this.keys.schemaVersions(eventType), version);
    return text === null ? null : (JSON.parse(text) as JsonSchema);
  }

  async addVersion(eventType: string, version: string, schema: JsonSchema, expectedLatest: string | null): Promise<AddVersionOutcome> {
    const redis = await this.connection.get();
    const outcome = await redis.rseRegisterSchema(this.keys.schemaVersions(eventType), this.keys.schemaOrder(eventType), expectedLatest ?? '', version, canonicalJson(schema));
    return outcome as AddVersionOutcome;
  }

  async deleteVersion(eventType: string, version: string): Promise<boolean> {
    const redis = await this.connection.get();
    const [[, removed]] = (await redis.multi().hdel(this.keys.schemaVersions(eventType), version).lrem(this.keys.schemaOrder(eventType), 0, version).exec()) as [[Error | null, number]];
    return removed === 1;
  }

  /** Closes the connection. Idempotent. */
  async close(): Promise<void> {
    await this.connection.close();
  }
}
