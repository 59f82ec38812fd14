import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A feature that is switched on needs an optional peer package that is not installed (the library does not install
 * its optional peers into every app). Thrown when the feature starts (`schema.enabled` fails the application's start)
 * or, for a feature that is only used on demand (a DTO class as a schema), at that use.
 */
export class OptionalDependencyMissingError extends RedisStreamsError {
  constructor(
    /** The package that could not be loaded, e.g. `ajv`. */
    readonly packageName: string,
    /** What needs it, e.g. `schema validation`. */
    readonly feature: string,
    /** Every package the feature needs (what to install). */
    readonly packages: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(
      'OPTIONAL_DEPENDENCY_MISSING',
      `${feature} needs the optional package "${packageName}", which is not installed (npm install ${packages.join(' ')})`,
      options,
    );
  }
}
