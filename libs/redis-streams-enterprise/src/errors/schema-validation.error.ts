import { RedisStreamsError } from './redis-streams.error.js';

/** One failed rule of a schema. */
export interface SchemaIssue {
  /** JSON path of the offending value, e.g. `$.address.zip`. */
  readonly path: string;
  readonly message: string;
}

/** A payload does not match its event type's schema (strict mode: nothing was written). */
export class SchemaValidationError extends RedisStreamsError {
  constructor(
    readonly eventType: string,
    readonly version: string,
    readonly issues: readonly SchemaIssue[],
  ) {
    super(
      'SCHEMA_INVALID',
      `Payload of "${eventType}" does not match schema version ${version}: ` +
        issues.slice(0, 10).map((i) => `${i.path} ${i.message}`).join('; '),
    );
  }
}
