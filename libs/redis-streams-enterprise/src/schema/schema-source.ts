import { dtoToJsonSchema } from './dto-schema.js';
import { DRAFT_2020_12_URI, isJsonSchemaObject, type JsonSchema } from './json-schema.js';

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
    if (fromStandard && typeof fromStandard === 'object') return withDraft(fromStandard as JsonSchema, DRAFT_2020_12_URI);
    if (typeof source.toJSONSchema === 'function') return withDraft(source.toJSONSchema() as JsonSchema, undefined);
    throw new Error(`a ${standard.vendor} schema that cannot describe itself as JSON Schema cannot be registered`);
  }
  return source;
}

/**
 * Keeps the draft a converted schema was written in (`$schema` first, the rest as converted): every process must
 * validate it by that draft (a 2020-12 tuple read as draft-07 refuses every value). `fallback` is the draft asked for.
 */
function withDraft(schema: JsonSchema, fallback: string | undefined): JsonSchema {
  const { $schema: draft, ...rest } = schema as JsonSchema & { $schema?: unknown };
  const $schema = typeof draft === 'string' ? draft : fallback;
  return ($schema === undefined ? rest : { $schema, ...rest }) as JsonSchema;
}

/**
 * The canonical text of a schema as registrations compare it: `$schema` says which draft, not what the data looks
 * like, so it is left out (a zod schema stored before its `$schema` was kept is the same schema).
 */
export function canonicalSchema(schema: JsonSchema): string {
  if (!isJsonSchemaObject(schema)) return canonicalJson(schema);
  const { $schema: _draft, ...rest } = schema;
  return canonicalJson(rest);
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
