import type { JsonSchema } from './json-schema.js';

/** Outcome of {@link SchemaRegistry.addVersion}. */
export type AddVersionOutcome = 'ok' | 'stale' | 'exists';

/**
 * Where schema versions are stored: the storage half of the schema registry. `SchemaManager` does the rest
 * (conversion to JSON Schema, compatibility checks, version numbering, caching, validation), so an implementation
 * only keeps versions per event type.
 *
 * The default is {@link RedisSchemaRegistry} (`schema.registry: 'redis'`). With `schema.registry: 'external'`, provide
 * your own implementation of this class (it is the DI token) so that `RedisStreamsEnterpriseModule` can see it:
 * ```ts
 * @Global() @Module({ providers: [{ provide: SchemaRegistry, useClass: HttpSchemaRegistry }], exports: [SchemaRegistry] })
 * class SchemaRegistryModule {}
 * // or: RedisStreamsEnterpriseModule.forRootAsync({ imports: [SchemaRegistryModule], useFactory: () => config })
 * ```
 * Contract: versions are immutable once added (the manager caches them for good); `listVersions` is in registration
 * order, oldest first; `addVersion` is a compare-and-set on the latest version, so two processes registering at once
 * cannot both pass a compatibility check against the same stale latest.
 */
export abstract class SchemaRegistry {
  /** Versions of an event type in registration order, oldest first; empty when it has none. */
  abstract listVersions(eventType: string): Promise<string[]>;

  /** The last registered version, or null when the event type has none. */
  abstract latestVersion(eventType: string): Promise<string | null>;

  /** The JSON Schema of one version, or null when that version is not registered. */
  abstract getVersion(eventType: string, version: string): Promise<JsonSchema | null>;

  /**
   * Appends a version if `expectedLatest` is still the latest (null: the event type has no version yet).
   * @returns `'ok'`; `'stale'` when another version became the latest meanwhile (the manager checks again);
   *   `'exists'` when this version is registered already.
   */
  abstract addVersion(eventType: string, version: string, schema: JsonSchema, expectedLatest: string | null): Promise<AddVersionOutcome>;

  /** Removes one version; true when it existed. */
  abstract deleteVersion(eventType: string, version: string): Promise<boolean>;
}
