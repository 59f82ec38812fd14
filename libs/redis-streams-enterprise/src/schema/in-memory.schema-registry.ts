import type { JsonSchema } from './json-schema.js';
import { SchemaRegistry, type AddVersionOutcome } from './schema-registry.js';

/**
 * Schema versions in this process only: for unit tests, and as the smallest example of an external registry
 * (`schema.registry: 'external'`). Two processes never see each other's versions; use it in production only where
 * every producer and consumer shares one process.
 */
export class InMemorySchemaRegistry extends SchemaRegistry {
  private readonly types = new Map<string, Map<string, JsonSchema>>();

  async listVersions(eventType: string): Promise<string[]> {
    return [...(this.types.get(eventType)?.keys() ?? [])];
  }

  async latestVersion(eventType: string): Promise<string | null> {
    return (await this.listVersions(eventType)).at(-1) ?? null;
  }

  async getVersion(eventType: string, version: string): Promise<JsonSchema | null> {
    const schema = this.types.get(eventType)?.get(version);
    // A copy: callers must not be able to change a stored version.
    return schema === undefined ? null : structuredClone(schema);
  }

  async addVersion(eventType: string, version: string, schema: JsonSchema, expectedLatest: string | null): Promise<AddVersionOutcome> {
    if ((await this.latestVersion(eventType)) !== expectedLatest) return 'stale';
    const versions = this.types.get(eventType) ?? new Map<string, JsonSchema>();
    if (versions.has(version)) return 'exists';
    versions.set(version, structuredClone(schema));
    this.types.set(eventType, versions);
    return 'ok';
  }

  async deleteVersion(eventType: string, version: string): Promise<boolean> {
    return this.types.get(eventType)?.delete(version) ?? false;
  }
}
