import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A message cannot be mapped to the schema its handler asked for (`@StreamEvent(pattern, { schema: { version, type } })`):
 * the version it was written with is unknown (never registered, deleted or pruned), is not compatible with the
 * handler's version, or the mapped payload does not satisfy the handler's schema. In `strict` mode the message is
 * dead-lettered (reason `schema-invalid`) with this error.
 */
export class SchemaUpcastError extends RedisStreamsError {
  constructor(
    readonly eventType: string,
    /** Version the message was written with; null when it carries no `schema` stamp. */
    readonly fromVersion: string | null,
    /** What the handler reads: its version, else its DTO class name. */
    readonly toSchema: string,
    /** Each reason with its JSON path (breaking changes or validation issues). */
    readonly reasons: readonly { readonly path: string; readonly message: string }[],
    summary: string,
  ) {
    super(
      'SCHEMA_UPCAST_FAILED',
      `Message of "${eventType}" ${fromVersion === null ? 'without a schema version' : `written with schema version ${fromVersion}`} ` +
        `cannot be read as ${toSchema}: ${summary}` +
        (reasons.length > 0 ? `: ${reasons.slice(0, 10).map((r) => `${r.path} ${r.message}`).join('; ')}` : ''),
    );
  }
}
