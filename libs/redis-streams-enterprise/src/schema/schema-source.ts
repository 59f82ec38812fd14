import { dtoToJsonSchema } from './dto-schema.js';
import type { JsonSchema } from './json-schema.js';

/** A class decorated with class-validator (a DTO); nested DTOs need `@ValidateNested()` and `@Type(() => X)`. */
export type DtoClass = new (...args: never[]) => object;

/** A Standard Schema object (zod 4, valibot, arktype, ...) that can also describe itself as JSON Schema. */
export interface StandardSchemaLike {
  readonly '~standard': {
    readonly vendor: string;
    readonly jsonSchema?: { readonly input?: (options: { target: string }) => unknown };
  };
  readonly toJSONSchema?: () => unknown;
}

/** What `registerSchema` accepts: a DTO class, a Standard Schema object, or a plain JSON Schema. */
export type SchemaSource = DtoClass | StandardSchemaLike | JsonSchema;

const isStandardSchema = (value: unknown): value is StandardSchemaLike =>
  typeof value === 'object' && value !== null && '~standard' in value;

/**
 * Turns any accepted schema into a JSON Schema, the form that is stored, compared and used to validate messages in
 * every process (also those that never saw the DTO class or the zod object). A DTO's nested DTOs are part of its
 * schema (see {@link dtoToJsonSchema} for the canonical form).
 * @throws Error when a Standard Schema object cannot describe itself as JSON Schema.
 * @throws TypeError when a nested DTO's class cannot be told (no `@Type(() => X)` on an array or interface property).
 */
export function toJsonSchema(source: SchemaSource): JsonSchema {
  if (typeof source === 'function') return dtoToJsonSchema(source);
  if (isStandardSchema(source)) {
    const standard = source['~standard'];
    const fromStandard = standard.jsonSchema?.input?.({ target: 'draft-2020-12' });
    if (fromStandard && typeof fromStandard === 'object') return stripMeta(fromStandard as JsonSchema);
    if (typeof source.toJSONSchema === 'function') return stripMeta(source.toJSONSchema() as JsonSchema);
    throw new Error(`a ${standard.vendor} schema that cannot describe itself as JSON Schema cannot be registered`);
  }
  return source;
}

/** `$schema` says which draft, not what the data looks like: leave it out of the canonical form. */
function stripMeta(schema: JsonSchema): JsonSchema {
  const { $schema: _draft, ...rest } = schema as JsonSchema & { $schema?: unknown };
  return rest as JsonSchema;
}

/** A canonical text of a JSON Schema (keys sorted at every level), so equal schemas compare equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
