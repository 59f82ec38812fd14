/**
 * The JSON Schema subset the compatibility checker understands: what zod 4's `z.toJSONSchema`,
 * class-validator-jsonschema and hand-written draft-07 / 2020-12 schemas produce. Other keywords
 * are allowed (the index signature) and compared conservatively.
 */
export type JsonSchemaType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

export interface JsonSchema {
  readonly $schema?: string;
  readonly $id?: string;
  readonly $ref?: string;
  readonly $defs?: Readonly<Record<string, JsonSchema | boolean>>;
  readonly definitions?: Readonly<Record<string, JsonSchema | boolean>>;
  /** `JsonSchemaType` values; typed `string` so schema literals without `as const` are accepted. */
  readonly type?: string | readonly string[];
  readonly properties?: Readonly<Record<string, JsonSchema | boolean>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: JsonSchema | boolean;
  /** An array is draft-04..07 tuple form (2020-12 spells that `prefixItems`). */
  readonly items?: JsonSchema | boolean | readonly (JsonSchema | boolean)[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly default?: unknown;
  readonly anyOf?: readonly (JsonSchema | boolean)[];
  readonly oneOf?: readonly (JsonSchema | boolean)[];
  /** OpenAPI 3.0 style, as some class-validator-jsonschema setups emit. */
  readonly nullable?: boolean;
  readonly format?: string;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  /** A number (draft 6+) or a boolean flag on `minimum` (draft 4). */
  readonly exclusiveMinimum?: number | boolean;
  readonly exclusiveMaximum?: number | boolean;
  readonly multipleOf?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly uniqueItems?: boolean;
  readonly minProperties?: number;
  readonly maxProperties?: number;
  readonly [keyword: string]: unknown;
}

/** The JSON Schema drafts validation tells apart: they read some keywords differently (`items`, tuples). */
export type JsonSchemaDraft = 'draft-07' | '2020-12';

/** `$schema` of draft 2020-12, what zod 4's `toJSONSchema` writes (kept on the schemas it converts). */
export const DRAFT_2020_12_URI = 'https://json-schema.org/draft/2020-12/schema';

/**
 * Keywords only 2019-09 / 2020-12 define. A schema without `$schema` that uses one was written for 2020-12: zod
 * schemas registered before their `$schema` was kept are stored that way.
 */
const DRAFT_2020_KEYWORDS: ReadonlySet<string> = new Set([
  'prefixItems', 'unevaluatedProperties', 'unevaluatedItems', 'dependentRequired', 'dependentSchemas',
  'minContains', 'maxContains', '$dynamicRef', '$dynamicAnchor',
]);

/** Keywords whose value maps names (not keywords) to subschemas. */
const SCHEMA_MAP_KEYWORDS: ReadonlySet<string> = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'dependencies']);

/** Keywords whose value is data or a list of names, never a subschema. */
const VALUE_KEYWORDS: ReadonlySet<string> = new Set(['enum', 'const', 'default', 'examples', 'example', 'required', 'dependentRequired', 'type']);

/**
 * The draft a schema is validated by: its `$schema` when it names 2020-12 (zod's conversion), else draft-07 (class-
 * validator-jsonschema and most hand-written schemas). Without `$schema`, a schema that uses a 2020-12-only keyword
 * (`prefixItems`, `unevaluatedProperties`, ...) and no draft-07 tuple (`items` as an array) is 2020-12.
 */
export function jsonSchemaDraftOf(schema: JsonSchema | boolean): JsonSchemaDraft {
  if (!isJsonSchemaObject(schema)) return 'draft-07';
  if (typeof schema.$schema === 'string') return /\/draft\/2020-12\/schema#?$/.test(schema.$schema) ? '2020-12' : 'draft-07';
  const seen = { draft2020: false, arrayItems: false };
  scanKeywords(schema, seen);
  return seen.draft2020 && !seen.arrayItems ? '2020-12' : 'draft-07';
}

function scanKeywords(node: unknown, seen: { draft2020: boolean; arrayItems: boolean }): void {
  if (Array.isArray(node)) {
    for (const item of node) scanKeywords(item, seen);
    return;
  }
  if (!isJsonSchemaObject(node)) return;
  for (const [keyword, value] of Object.entries(node)) {
    if (DRAFT_2020_KEYWORDS.has(keyword)) seen.draft2020 = true;
    if (keyword === 'items' && Array.isArray(value)) seen.arrayItems = true;
    if (VALUE_KEYWORDS.has(keyword)) continue;
    if (SCHEMA_MAP_KEYWORDS.has(keyword) && isJsonSchemaObject(value)) {
      for (const child of Object.values(value)) scanKeywords(child, seen);
    } else {
      scanKeywords(value, seen);
    }
  }
}

/** Keywords that never change which values are valid, so changing them can never break a reader. */
export const ANNOTATION_KEYWORDS: ReadonlySet<string> = new Set([
  '$schema', '$id', '$comment', '$anchor', '$defs', 'definitions', 'id', 'title', 'description', 'default',
  'examples', 'example', 'deprecated', 'readOnly', 'writeOnly', 'contentEncoding', 'contentMediaType',
]);

const JSON_TYPES: ReadonlySet<string> = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);

export function isJsonSchemaObject(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON equality that ignores object key order (schemas are compared after JSON round trips). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = Object.keys(ao).filter((k) => ao[k] !== undefined);
  if (keys.length !== Object.keys(bo).filter((k) => bo[k] !== undefined).length) return false;
  return keys.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && jsonEqual(ao[k], bo[k]));
}

/** The JSON type of a value, with whole numbers reported as `integer`. */
export function jsonTypeOf(value: unknown): JsonSchemaType | undefined {
  if (value === null) return 'null';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'object';
  return undefined;
}

/** Allowed values from `enum` / `const`, or undefined when the schema does not list them. */
export function enumValuesOf(schema: JsonSchema): readonly unknown[] | undefined {
  const fromConst = 'const' in schema && schema.const !== undefined ? [schema.const] : undefined;
  if (Array.isArray(schema.enum)) {
    return fromConst ? schema.enum.filter((v) => fromConst.some((c) => jsonEqual(c, v))) : schema.enum;
  }
  return fromConst;
}

/**
 * The types a schema allows, or undefined for "any type". Without `type`, an `enum` / `const`
 * still pins the types down (`{ enum: ['a', 'b'] }` is a string schema).
 */
export function typesOf(schema: JsonSchema): ReadonlySet<JsonSchemaType> | undefined {
  const declared = schema.type;
  let types: Set<JsonSchemaType> | undefined;
  if (declared !== undefined) {
    const list = Array.isArray(declared) ? declared : [declared];
    types = new Set((list as readonly unknown[]).filter((t): t is JsonSchemaType => typeof t === 'string' && JSON_TYPES.has(t)));
  } else {
    const values = enumValuesOf(schema);
    if (values) types = new Set(values.map(jsonTypeOf).filter((t): t is JsonSchemaType => t !== undefined));
  }
  if (types && schema.nullable === true) types.add('null');
  return types;
}

function isNullSchema(schema: JsonSchema | boolean): boolean {
  if (!isJsonSchemaObject(schema)) return false;
  const types = typesOf(schema);
  return types !== undefined && types.size === 1 && types.has('null');
}

/** The non-null branches of `anyOf` / `oneOf`, or undefined when the schema has neither. */
export function unionBranches(schema: JsonSchema): { keyword: 'anyOf' | 'oneOf'; branches: readonly (JsonSchema | boolean)[] } | undefined {
  for (const keyword of ['anyOf', 'oneOf'] as const) {
    const branches = schema[keyword];
    if (Array.isArray(branches)) return { keyword, branches: branches.filter((b) => !isNullSchema(b)) };
  }
  return undefined;
}

/** Resolves a `$ref` string to its target, or undefined when it cannot. */
export type RefResolver = (ref: string) => JsonSchema | boolean | undefined;

/**
 * Does the schema allow `null` (through `type`, `nullable`, `enum`, or a null branch of a union)?
 * An unresolvable or too deeply nested `$ref` counts as allowing null.
 */
export function allowsNull(schema: JsonSchema | boolean, resolve: RefResolver = () => undefined, depth = 0): boolean {
  if (!isJsonSchemaObject(schema)) return schema;
  if (typeof schema.$ref === 'string') {
    const target = depth < 32 ? resolve(schema.$ref) : undefined;
    return target === undefined || allowsNull(target, resolve, depth + 1);
  }
  const union = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(union)) return union.some((b) => allowsNull(b, resolve, depth + 1));
  const values = enumValuesOf(schema);
  if (values) return values.some((v) => v === null);
  const types = typesOf(schema);
  return types === undefined || types.has('null');
}

/**
 * The same schema with null taken out, so nullability can be compared once and the rest on its own:
 * `type: ['string', 'null']` becomes `type: 'string'`, `anyOf: [X, { type: 'null' }]` becomes X
 * (keeping the outer annotations), `nullable` is dropped and `null` leaves `enum`.
 */
export function withoutNull(schema: JsonSchema): JsonSchema {
  const { nullable: _nullable, ...rest } = schema;
  let result: Record<string, unknown> = rest;
  const union = unionBranches(schema);
  if (union) {
    const { [union.keyword]: _branches, ...outer } = result;
    if (union.branches.length === 1) {
      const only = union.branches[0];
      if (only === false) return false as unknown as JsonSchema;
      result = isJsonSchemaObject(only) ? { ...outer, ...withoutNull(only) } : outer;
    } else {
      result = { ...outer, [union.keyword]: union.branches };
    }
  }
  if (Array.isArray(result.type)) {
    const types = (result.type as string[]).filter((t) => t !== 'null');
    result = { ...result, type: types.length === 1 ? types[0] : types };
  } else if (result.type === 'null') {
    result = { ...result, type: [] };
  }
  if (Array.isArray(result.enum)) result = { ...result, enum: (result.enum as unknown[]).filter((v) => v !== null) };
  if (result.const === null) result = { ...result, type: [], const: undefined };
  return result as JsonSchema;
}

/** Resolves `#/$defs/x` and `#/definitions/x` against the root; anything else stays unresolved. */
export function resolveLocalRef(root: JsonSchema, ref: string): JsonSchema | boolean | undefined {
  const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
  if (!match) return undefined;
  const name = match[2].replace(/~1/g, '/').replace(/~0/g, '~');
  const table = match[1] === '$defs' ? root.$defs : root.definitions;
  return table && Object.prototype.hasOwnProperty.call(table, name) ? table[name] : undefined;
}

/** A numeric bound with draft 4 (boolean flag) and draft 6+ (number) exclusiveness folded in. */
export interface Bound { readonly value: number; readonly exclusive: boolean }

export function lowerBound(schema: JsonSchema): Bound | undefined {
  return tighterBound(schema.minimum, schema.exclusiveMinimum, (a, b) => a > b);
}

export function upperBound(schema: JsonSchema): Bound | undefined {
  return tighterBound(schema.maximum, schema.exclusiveMaximum, (a, b) => a < b);
}

function tighterBound(inclusive: number | undefined, exclusive: number | boolean | undefined, tighter: (a: number, b: number) => boolean): Bound | undefined {
  // Draft 4 spells an exclusive bound as a boolean flag on minimum/maximum.
  if (typeof exclusive === 'boolean') return inclusive === undefined ? undefined : { value: inclusive, exclusive };
  if (inclusive === undefined) return exclusive === undefined ? undefined : { value: exclusive, exclusive: true };
  if (exclusive === undefined) return { value: inclusive, exclusive: false };
  return tighter(exclusive, inclusive) || exclusive === inclusive ? { value: exclusive, exclusive: true } : { value: inclusive, exclusive: false };
}

/** Does the writer's bound keep every value within the reader's? */
export function boundHolds(reader: Bound | undefined, writer: Bound | undefined, tighter: (a: number, b: number) => boolean): boolean {
  if (reader === undefined) return true;
  if (writer === undefined) return false;
  return tighter(writer.value, reader.value) || (writer.value === reader.value && (writer.exclusive || !reader.exclusive));
}

export function describeBound(bound: Bound | undefined, kind: 'minimum' | 'maximum'): string {
  if (bound === undefined) return 'none';
  return `${bound.exclusive ? `exclusive${kind === 'minimum' ? 'Minimum' : 'Maximum'}` : kind} ${bound.value}`;
}

