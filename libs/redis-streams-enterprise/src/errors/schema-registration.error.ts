import { RedisStreamsError } from './redis-streams.error.js';

/** A schema registration was refused (incompatible, bad version, unknown schema). */
export class SchemaRegistrationError extends RedisStreamsError {
  constructor(
    readonly eventType: string,
    message: string,
    readonly breakingChanges: readonly { readonly path: string; readonly rule: string; readonly message: string }[] = [],
  ) {
    super('SCHEMA_REGISTRATION_REFUSED', `Schema for "${eventType}" not registered: ${message}`);
  }
}
