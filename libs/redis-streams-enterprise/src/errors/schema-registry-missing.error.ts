import { RedisStreamsError } from './redis-streams.error.js';

/**
 * `schema.registry` is `'external'` but no `SchemaRegistry` implementation was provided. Thrown when the application
 * starts (the module's `SchemaManager` provider) or when a `SchemaManager` is constructed without one.
 */
export class SchemaRegistryMissingError extends RedisStreamsError {
  constructor(readonly owner: string) {
    super(
      'SCHEMA_REGISTRY_MISSING',
      `${owner} has schema.registry 'external' but no SchemaRegistry implementation was provided; provide one ` +
        `(a provider for the SchemaRegistry class, visible to RedisStreamsEnterpriseModule: a global module or ` +
        `forRootAsync({ imports })), pass it to new SchemaManager(config, registry), or set schema.registry to 'redis'`,
    );
  }
}
